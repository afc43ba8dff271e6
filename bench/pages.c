/* What one page costs a short-lived process on this machine: touch N pages
 * of .bss (each a page fault: a zeroed page mapped, later unmapped).
 *   cc -O2 -o /tmp/pages bench/pages.c
 *   hyperfine -N '/tmp/pages 0' '/tmp/pages 100' '/tmp/pages 400'
 * With "populate" as a second argument the pages are mapped in one
 * madvise(MADV_POPULATE_WRITE) first: the cost is the page, not the trap. */
#include <stdlib.h>
#include <sys/mman.h>
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif
static char buf[1 << 22];
int main(int argc, char **argv) {
  int n = argc > 1 ? atoi(argv[1]) : 0;
  if (n < 0 || n > (1 << 22) / 4096) return 100;
  if (argc > 2) madvise(buf, (size_t)n * 4096, MADV_POPULATE_WRITE);
  for (int i = 0; i < n; i++) buf[i * 4096] = 1;
  return 0;
}
