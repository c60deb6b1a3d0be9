/* Allocate 1 MiB in grow_buffers() every 20 ms, STEPS times (argv[1]); exit with status 3. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline)) void *grow_buffers(size_t n) {
  void *p = malloc(n);
  memset(p, 1, n);
  return p;
}

int main(int argc, char **argv) {
  int steps = argc > 1 ? atoi(argv[1]) : 100;
  puts("ready");
  fflush(stdout);
  for (int i = 0; i < steps; i++) {
    grow_buffers(1 << 20);
    usleep(20000);
  }
  return 3;
}
