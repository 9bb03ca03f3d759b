/*
 * Smoke firmware: HELLO on UART0, then run the embedded smoke module
 * (interpreted, and AOT-compiled by our wamrc when built with it) and print
 * each result. Exits through semihosting: 0 if every result was right.
 */
#include <stdio.h>
#include <string.h>

#include "board.h"
#include "cache.h"
#include "mpu.h"
#include "wasm_export.h"

extern const unsigned char smoke_wasm[];
extern const size_t smoke_wasm_len;
#ifdef SMOKE_HAVE_AOT
extern const unsigned char smoke_aot[];
extern const size_t smoke_aot_len;
#endif

/* SMOKE_POOL_BYTES: from the board header. */

static __attribute__((aligned(8))) uint8_t wamr_pool[SMOKE_POOL_BYTES];

static void
uart_line(const char *text)
{
    board_uart_write(text, strlen(text));
    board_uart_write("\n", 1);
}

/* Call `func` with i32 cells; returns 0 and the first result cell, or -1. */
static int
call_i32(wasm_module_inst_t inst, const char *func, uint32_t *cells,
         uint32_t argc)
{
    wasm_function_inst_t fn = wasm_runtime_lookup_function(inst, func);
    wasm_exec_env_t env;
    int rc = -1;

    if (!fn)
        return -1;
    env = wasm_runtime_create_exec_env(inst, 8 * 1024);
    if (!env)
        return -1;
    if (wasm_runtime_call_wasm(env, fn, argc, cells))
        rc = 0;
    wasm_runtime_destroy_exec_env(env);
    return rc;
}

/* Load one module image and check add() and fmadd(). Returns 0 if right. */
static int
run_module(const char *kind, const unsigned char *image, size_t len)
{
    char line[192], err[128];
    uint8_t *buf = wasm_runtime_malloc((uint32_t)len);
    wasm_module_t module = NULL;
    wasm_module_inst_t inst = NULL;
    uint32_t cells[3];
    float f;
    int ok = 0;

    if (!buf)
        return -1;
    memcpy(buf, image, len); /* WAMR keeps and may patch the image: RAM */
    module = wasm_runtime_load(buf, (uint32_t)len, err, sizeof(err));
    if (!module)
        goto report_err;
    cache_sync_code(); /* AOT code written through the D-cache (Cortex-M7; nothing on the M4) */
    inst = wasm_runtime_instantiate(module, 8 * 1024, 0, err, sizeof(err));
    if (!inst)
        goto report_err;

    cells[0] = 200;
    cells[1] = 26;
    if (call_i32(inst, "add", cells, 2) == 0) {
        snprintf(line, sizeof(line), "SMOKE kind=%s func=add result=%ld", kind,
                 (long)(int32_t)cells[0]);
        uart_line(line);
        ok += cells[0] == 226;
    }
    f = 3.0f;
    memcpy(&cells[0], &f, 4);
    f = 4.0f;
    memcpy(&cells[1], &f, 4);
    f = 0.5f;
    memcpy(&cells[2], &f, 4);
    if (call_i32(inst, "fmadd", cells, 3) == 0) {
        memcpy(&f, &cells[0], 4);
        snprintf(line, sizeof(line), "SMOKE kind=%s func=fmadd result_x10=%ld",
                 kind, (long)(f * 10.0f));
        uart_line(line);
        ok += f == 12.5f;
    }
    goto out;

report_err:
    snprintf(line, sizeof(line), "SMOKE kind=%s error=\"%s\"", kind, err);
    uart_line(line);
out:
    if (inst)
        wasm_runtime_deinstantiate(inst);
    if (module)
        wasm_runtime_unload(module);
    wasm_runtime_free(buf);
    return ok == 2 ? 0 : -1;
}

int
main(void)
{
    RuntimeInitArgs init;
    char line[96];
    int failures = 0;

    board_init();
    uart_line("HELLO device_id=" BOARD_NAME " rtos=baremetal runtime=WAMR "
              "fw_version=0.1.0 proto=2");

    /* SRAM execute-never, the pool executable (mpu.c): the AOT run below executes from the pool
       under the MPU, and a fetch from SRAM outside the pool must fault. */
    {
        struct mpu_window win;
        static uint16_t probe_static[2];
        uint16_t probe_stack[2];
        uint16_t *probe = probe_static;

        if (mpu_protect_pool(wamr_pool, sizeof(wamr_pool), &win) != 0) {
            uart_line("SMOKE mpu error=\"no MPU\"");
            return 1;
        }
        if ((uintptr_t)probe >= win.lo && (uintptr_t)probe < win.hi)
            probe = probe_stack; /* the static one fell in the pool's window */
        snprintf(line, sizeof(line), "SMOKE mpu exec=0x%08lx-0x%08lx probe=0x%08lx fetch=%s",
                 (unsigned long)win.lo, (unsigned long)win.hi, (unsigned long)(uintptr_t)probe,
                 mpu_probe_exec(probe) ? "fault" : "ran");
        uart_line(line);
        failures += strstr(line, "fetch=fault") == NULL;
    }
#ifdef BOARD_HAS_CACHES
    /* Cortex-M7: the reset handler switched both caches on (cache.c), as CCR reads back on a
       chip; QEMU models no cache and keeps CCR.IC/DC at zero. The AOT run below follows the
       cache maintenance after its load either way. */
    uart_line(cache_on() ? "SMOKE caches=on" : "SMOKE caches=off (CCR.IC/DC read 0: none modelled)");
#endif

    memset(&init, 0, sizeof(init));
    init.mem_alloc_type = Alloc_With_Pool;
    init.mem_alloc_option.pool.heap_buf = wamr_pool;
    init.mem_alloc_option.pool.heap_size = sizeof(wamr_pool);
    if (!wasm_runtime_full_init(&init)) {
        uart_line("ERROR code=WAMR_INIT_FAIL");
        return 1;
    }
    failures += run_module("wasm", smoke_wasm, smoke_wasm_len) != 0;
#ifdef SMOKE_HAVE_AOT
    failures += run_module("aot", smoke_aot, smoke_aot_len) != 0;
#endif
    snprintf(line, sizeof(line), "SMOKE done failures=%d uptime_ms=%lu",
             failures, (unsigned long)board_now_ms());
    uart_line(line);
    wasm_runtime_destroy();
    return failures ? 1 : 0;
}
