/*
 * Self-test of the kernel (kern.c) on QEMU: two equal-priority threads keep
 * distinct values in all FP registers s0-s31 while being time-sliced against
 * each other, and check them after every spin; plus sleep, semaphores, a
 * contended mutex and restarting a spinning thread. Prints KERN lines on the
 * UART and exits through semihosting with the number of failures.
 */
#include <stdio.h>
#include <string.h>

#include "board.h"
#include "kern.h"

#define ROUNDS 12
#define SPINS 40000000u /* ~35 ms on QEMU: several 5 ms slices per probe */

static struct kern_thread t_main, t_fp[2], t_spin;
static uint64_t stack_main[1024], stack_fp[2][512], stack_spin[256];
static struct kern_sem done;
static struct kern_mutex shared_lock;
static volatile uint32_t shared_counter;
static volatile uint32_t spin_entries, spin_progress;
static volatile uint32_t fp_bad[2];

static void
say(const char *line)
{
    board_uart_write(line, strlen(line));
    board_uart_write("\n", 1);
}

#define SET(n) "vmov s" #n ", %[v]\n add %[v], %[v], #1\n"
#define CHK(n) "vmov %[t], s" #n "\n cmp %[t], %[w]\n it ne\n addne %[bad], %[bad], #1\n add %[w], %[w], #1\n"
#define ALL(M)                                                                                     \
    M(0) M(1) M(2) M(3) M(4) M(5) M(6) M(7) M(8) M(9) M(10) M(11) M(12) M(13) M(14) M(15) M(16)    \
    M(17) M(18) M(19) M(20) M(21) M(22) M(23) M(24) M(25) M(26) M(27) M(28) M(29) M(30) M(31)

/* Load s0-s31 with base..base+31, spin (preempted meanwhile), check them. */
static uint32_t
fp_probe(uint32_t base, uint32_t spins)
{
    uint32_t v = base, w = base, t = 0, bad = 0, c = spins;

    __asm volatile(ALL(SET) "1: subs %[c], %[c], #1\n bne 1b\n" ALL(CHK)
                   : [v] "+r"(v), [w] "+r"(w), [t] "+r"(t), [bad] "+r"(bad), [c] "+r"(c)
                   :
                   : "cc", "s0", "s1", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10",
                     "s11", "s12", "s13", "s14", "s15", "s16", "s17", "s18", "s19", "s20", "s21",
                     "s22", "s23", "s24", "s25", "s26", "s27", "s28", "s29", "s30", "s31");
    return bad;
}

static void
fp_main(void *arg)
{
    unsigned id = (unsigned)(uintptr_t)arg;

    for (unsigned r = 0; r < ROUNDS; r++) {
        fp_bad[id] += fp_probe(0x1000u * (id + 1) + r, SPINS);
        kern_mutex_lock(&shared_lock);
        {
            uint32_t c = shared_counter;
            kern_yield(); /* hold the mutex across a switch */
            shared_counter = c + 1;
        }
        kern_mutex_unlock(&shared_lock);
    }
    kern_sem_give(&done);
}

static void
spin_main(void *arg)
{
    (void)arg;
    spin_entries++;
    for (;;)
        spin_progress++;
}

static int
check(const char *what, int ok)
{
    char line[128];

    snprintf(line, sizeof(line), "KERN %s %s", ok ? "ok" : "FAIL", what);
    say(line);
    return ok ? 0 : 1;
}

static void
test_main(void *arg)
{
    char line[128];
    int fails = 0;
    uint32_t t0, slept, before, switches0 = kern_switches();

    (void)arg;
    t0 = board_now_ms();
    kern_sleep_ms(50);
    slept = board_now_ms() - t0;
    fails += check("sleep 50 ms", slept >= 49 && slept <= 60);
    fails += check("sem take times out", kern_sem_take(&done, 20) != 0);

    t0 = board_now_ms();
    kern_thread_create(&t_fp[0], "fp0", 1, fp_main, (void *)0, stack_fp[0], sizeof(stack_fp[0]));
    kern_thread_create(&t_fp[1], "fp1", 1, fp_main, (void *)1, stack_fp[1], sizeof(stack_fp[1]));
    fails += check("fp thread 0 done", kern_sem_take(&done, 20000) == 0);
    fails += check("fp thread 1 done", kern_sem_take(&done, 20000) == 0);
    snprintf(line, sizeof(line), "KERN info fp phase %lu ms, switches=%lu fp_bad=%lu,%lu",
             (unsigned long)(board_now_ms() - t0),
             (unsigned long)(kern_switches() - switches0), (unsigned long)fp_bad[0],
             (unsigned long)fp_bad[1]);
    say(line);
    fails += check("time-sliced (many switches)", kern_switches() - switches0 > 2 * ROUNDS);
    fails += check("s0-s31 preserved across switches", fp_bad[0] == 0 && fp_bad[1] == 0);
    fails += check("mutex serialised the counter", shared_counter == 2 * ROUNDS);

    kern_thread_create(&t_spin, "spin", 1, spin_main, NULL, stack_spin, sizeof(stack_spin));
    kern_sleep_ms(20);
    before = spin_progress;
    fails += check("spinning thread runs", spin_entries == 1 && before > 0);
    fails += check("restart a spinning thread", kern_thread_restart(&t_spin) == 0);
    kern_sleep_ms(20);
    fails += check("it started over", spin_entries == 2);
    fails += check("stack paint measured", kern_stack_free(&t_spin) > 0
                   && kern_stack_free(&t_spin) < sizeof(stack_spin));

    snprintf(line, sizeof(line), "KERN done failures=%d", fails);
    say(line);
    board_exit(fails);
}

int
main(void)
{
    board_init();
    say("HELLO device_id=" BOARD_NAME " rtos=baremetal runtime=kern-selftest proto=2");
    kern_sem_init(&done, 0, 2);
    kern_mutex_init(&shared_lock);
    kern_thread_create(&t_main, "main", 2, test_main, NULL, stack_main, sizeof(stack_main));
    kern_start();
}
