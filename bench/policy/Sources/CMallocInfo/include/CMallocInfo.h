// glibc's heap statistics for policy-bench --maps (Swift's Glibc module leaves out <malloc.h>).
#ifndef CMALLOCINFO_H
#define CMALLOCINFO_H
#include <stddef.h>

/// Bytes of heap in use (small blocks plus mmapped ones, mallinfo2), or -1 where glibc has no mallinfo2.
long long cmalloc_in_use(void);
/// malloc_trim(0): hands free heap pages back to the kernel, so the resident set shows what is kept.
void cmalloc_trim(void);
#endif
