/*
 * RFC 3339 times (kle_time_parse): every record time, expirationTimestamp of
 * an ExecCredential. A time that parses formats back (nanosecond digits) to
 * a text that parses to the same instant.
 */
#include "fuzz.h"
#include "kle/record.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 256)
        return 0;
    char *text = fuzz_strndup(data, size);
    int64_t ns = 0;
    int rc = kle_time_parse(&ns, text);
    if (rc < 0) {
        fuzz_check_error(rc);
        FUZZ_CHECK(rc == KLE_EINVAL);
    } else {
        FUZZ_CHECK(rc == 0);
        char back[64];
        int n = kle_time_format(back, sizeof(back), ns, 9);
        FUZZ_CHECK(n > 0 && (size_t)n < sizeof(back));
        int64_t again = 0;
        FUZZ_CHECK(kle_time_parse(&again, back) == 0);
        FUZZ_CHECK(again == ns);
    }
    free(text);
    return 0;
}
