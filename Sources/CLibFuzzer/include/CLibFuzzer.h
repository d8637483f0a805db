// libFuzzer's entry point for programs that keep their own main (https://llvm.org/docs/LibFuzzer.html,
// "Using LLVMFuzzerRunDriver"). Defined by the runtime that `swiftc -sanitize=fuzzer` links.
#ifndef GATEHOUSE_CLIBFUZZER_H
#define GATEHOUSE_CLIBFUZZER_H
#include <stddef.h>
#include <stdint.h>

int LLVMFuzzerRunDriver(int *argc, char ***argv, int (*callback)(const uint8_t *data, size_t size));

#endif
