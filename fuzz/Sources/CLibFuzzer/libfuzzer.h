// libFuzzer's driver, from the toolchain's compiler-rt (linked by -sanitize=fuzzer). SwiftPM renames every
// executable's entry point to `main` at link time, so libFuzzer's own `main` is never used: each target calls
// the driver from its top-level code instead.
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));
