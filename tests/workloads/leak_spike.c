/* Leak in one function, spike in another: heaptrack's judge.
 * Usage: leak_spike ROUNDS LEAK_KIB SPIKE_MIB. Each round leak_buffer() keeps LEAK_KIB and
 * spike_buffer() allocates SPIKE_MIB, touches it and frees it; 20 ms apart. Prints "ready" first. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

__attribute__((noinline)) void *leak_buffer(size_t n) {
  void *p = malloc(n);
  memset(p, 1, n);
  return p;
}

__attribute__((noinline)) size_t spike_buffer(size_t n) {
  char *p = malloc(n);
  memset(p, 1, n);
  size_t sum = (size_t)p[n / 2];
  free(p);
  return sum;
}

int main(int argc, char **argv) {
  int rounds = argc > 1 ? atoi(argv[1]) : 100;
  size_t leak = (size_t)(argc > 2 ? atoi(argv[2]) : 256) << 10;
  size_t spike = (size_t)(argc > 3 ? atoi(argv[3]) : 32) << 20;
  puts("ready");
  fflush(stdout);
  for (int i = 0; i < rounds; i++) {
    leak_buffer(leak);
    spike_buffer(spike);
    usleep(20000);
  }
  return 0;
}
