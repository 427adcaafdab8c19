/**
 * @file kle/kle.h
 * @brief Umbrella header: everything a libkle user needs (the fakes are in kle/testing.h).
 */
#ifndef KLE_KLE_H
#define KLE_KLE_H

#include "common.h"
#include "kle/version.h"
#include "errors.h"
#include "log.h"
#include "clock.h"
#include "record.h"
#include "lock.h"
#include "elector.h"
#include "client.h"
#include "locks.h"
#include "coordinated.h"

#endif
