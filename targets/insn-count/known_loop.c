/* A program whose instruction count is known: N iterations of a loop that
 * adds to a volatile (6 aarch64 instructions each at -O1), for checking an
 * instruction counter against another (docs/logs/targets/insn-count-agreement.txt):
 *   aarch64-linux-gnu-gcc -O1 -o /tmp/loop targets/insn-count/known_loop.c */
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    long n = argc > 1 ? atol(argv[1]) : 0;
    volatile long s = 0;
    for (long i = 0; i < n; i++) {
        s += i;
    }
    printf("%ld\n", s);
    return 0;
}
