/* A process that lives about a millisecond: touch MIB MiB, write its own VmHWM (bytes) to OUT, exit.
 * Usage: brief OUT MIB. No interpreter start-up, so memview's sampler never sees it alive. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

static void report(const char *path);

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    size_t n = (size_t)atoi(argv[2]) << 20;
    report("/dev/null");  /* fault in the code the report runs, so it adds nothing after the reading */
    volatile char *p = malloc(n);
    for (size_t i = 0; i < n; i += 4096) p[i] = 1;
    report(argv[1]);
    _exit(0);  /* no exit handlers: nothing runs after the reading */
}

static void report(const char *path) {
    /* raw system calls on stack buffers: nothing may allocate after the reading */
    char buf[4096], out[64];
    int fd = open("/proc/self/status", O_RDONLY);
    ssize_t len = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[len > 0 ? len : 0] = 0;
    char *at = strstr(buf, "VmHWM:");
    long kb = at ? atol(at + 6) : -1;
    int o = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int k = snprintf(out, sizeof out, "{\"hwm_bytes\": %ld}", kb * 1024);
    if (write(o, out, k) != k) _exit(1);
    close(o);
}
