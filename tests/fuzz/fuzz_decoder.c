/*
 * fuzz_decoder.c - libFuzzer target for the message decoder (input.h).
 *
 * Every input goes through four decoders, so one corpus covers them all:
 * Avro with Confluent framing and writer schemas from tests/fuzz/schemas
 * (copied to a temporary folder: ids 1 = built-in, 2 = a newer writer with
 * arrays, maps and unions, 3 = an older writer, 4 = optional enums, a
 * union of two enums and a recursive record), Avro bare, Avro auto with
 * no schema source, and JSON. A decode must never crash, leak or read out
 * of bounds, and an accepted event must satisfy the documented invariants.
 *
 * Build and run: tests/fuzz/run.sh SECONDS (clang -fsanitize=fuzzer,address).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "intentd/codec.h"
#include "intentd/input.h"
#include "intentd/log.h"

#define NOW_MS 1700000000000LL

static itd_decoder_t *dec[4];

static void copy_schema(const char *from_dir, const char *to_dir,
                        const char *name) {
        char src[4096], dst[4096], buf[65536];
        snprintf(src, sizeof src, "%s/%s", from_dir, name);
        snprintf(dst, sizeof dst, "%s/%s", to_dir, name);
        FILE *in = fopen(src, "rb"), *out = fopen(dst, "wb");
        if (!in || !out) {
                fprintf(stderr, "fuzz: cannot copy %s to %s\n", src, dst);
                abort();
        }
        size_t n = fread(buf, 1, sizeof buf, in);
        fwrite(buf, 1, n, out);
        fclose(in);
        fclose(out);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv) {
        (void)argc;
        (void)argv;
        static char dir[] = "/tmp/intentd-fuzz-XXXXXX";
        const char *schemas = getenv("ITD_FUZZ_SCHEMAS");
        char err[512];
        itd_log_setup(ITD_LOG_ERR, ITD_LOG_FORMAT_PLAIN);
        if (!schemas || !mkdtemp(dir)) {
                fprintf(stderr, "fuzz: set ITD_FUZZ_SCHEMAS to "
                                "tests/fuzz/schemas (run.sh does)\n");
                abort();
        }
        copy_schema(schemas, dir, "1.avsc");
        copy_schema(schemas, dir, "2.avsc");
        copy_schema(schemas, dir, "3.avsc");
        copy_schema(schemas, dir, "4.avsc");
        for (int k = 0; k < 4; k++) {
                /* the option table's defaults but for the limits */
                itd_input_conf_t ic = {.registry_url = "",
                                       .registry_user_info = "",
                                       .registry_timeout_ms = 5000,
                                       .max_future_ms = 3600 * 1000LL};
                ic.max_string_bytes = 127;
                ic.max_message_bytes = 4096;
                ic.format = k == 3 ? ITD_INPUT_JSON : ITD_INPUT_AVRO;
                ic.framing = k == 0   ? ITD_FRAMING_CONFLUENT
                             : k == 1 ? ITD_FRAMING_BARE
                                      : ITD_FRAMING_AUTO;
                ic.schemas_dir = k == 0 ? dir : "";
                dec[k] = itd_decoder_new(&ic, NULL, err, sizeof err);
                if (!dec[k]) {
                        fprintf(stderr, "fuzz: decoder %d: %s\n", k, err);
                        abort();
                }
        }
        return 0;
}

/* What an accepted event promises its consumers. */
static void check_event(const itd_event_t *ev) {
        const char *s[] = {ev->user_id, ev->event_id, ev->item_id,
                           ev->category, ev->session_id};
        for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
                if (!memchr(s[i], 0, ITD_ID_MAX))
                        abort();
        if (!memchr(ev->query, 0, ITD_QUERY_MAX) || !ev->user_id[0] ||
            (int)ev->type < 0 || ev->type >= ITD_EV__COUNT ||
            ev->ts_ms < ITD_DECODER_MIN_TS_MS ||
            ev->ts_ms > NOW_MS + 3600 * 1000LL ||
            (!isnan(ev->price) && (ev->price < 0 || !isfinite(ev->price))))
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        for (int k = 0; k < 4; k++) {
                itd_event_t ev;
                char detail[512];
                itd_reason_t r = itd_decoder_decode(dec[k], data, size,
                                                    NOW_MS, &ev, detail,
                                                    sizeof detail);
                if ((int)r < 0 || r >= ITD_REASON__COUNT ||
                    !memchr(detail, 0, sizeof detail))
                        abort();
                if (r == ITD_REASON_OK)
                        check_event(&ev);
                else if (!detail[0])
                        abort(); /* every reason comes with a detail */
        }
        return 0;
}
