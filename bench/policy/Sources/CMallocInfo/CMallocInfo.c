#include <stdlib.h>  /* features.h: __GLIBC__ and __GLIBC_MINOR__ */
#include "CMallocInfo.h"
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
#include <malloc.h>
long long cmalloc_in_use(void) {
    struct mallinfo2 m = mallinfo2();
    return (long long)(m.uordblks + m.hblkhd);
}
void cmalloc_trim(void) { (void)malloc_trim(0); }
#else
long long cmalloc_in_use(void) { return -1; }
void cmalloc_trim(void) {}
#endif
