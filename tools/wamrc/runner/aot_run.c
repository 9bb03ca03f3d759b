/*
 * aot-run FILE FUNC [I32 ARG]...: load a .wasm or .aot file into WAMR, call
 * FUNC with i32 arguments and print its i32 result (or the trap) on stdout.
 * Exit 0 on a result, 1 on a load/instantiate/call failure, 2 on bad usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bh_read_file.h"
#include "wasm_export.h"

#define MAX_ARGS 8

/* Parse decimal i32 arguments; returns the count or -EINVAL. */
static int
parse_args(int argc, char **argv, uint32_t *cells)
{
    int i;

    if (argc > MAX_ARGS)
        return -EINVAL;
    for (i = 0; i < argc; i++) {
        char *end;
        long v;

        errno = 0;
        v = strtol(argv[i], &end, 10);
        if (errno || end == argv[i] || *end)
            return -EINVAL;
        cells[i] = (uint32_t)(int32_t)v;
    }
    return argc;
}

/* Instantiate, call and print. Returns the process exit code. */
static int
call(wasm_module_t module, const char *func_name, int argc, uint32_t *cells)
{
    char error_buf[128];
    wasm_module_inst_t inst;
    wasm_exec_env_t env;
    wasm_function_inst_t func;
    int rc = 1;

    inst = wasm_runtime_instantiate(module, 16 * 1024, 16 * 1024, error_buf,
                                    sizeof(error_buf));
    if (!inst) {
        fprintf(stderr, "aot-run: instantiate: %s\n", error_buf);
        return 1;
    }
    env = wasm_runtime_create_exec_env(inst, 16 * 1024);
    if (!env) {
        fprintf(stderr, "aot-run: cannot create exec env\n");
        goto out_inst;
    }
    func = wasm_runtime_lookup_function(inst, func_name);
    if (!func) {
        fprintf(stderr, "aot-run: no exported function '%s'\n", func_name);
        goto out_env;
    }
    if (!wasm_runtime_call_wasm(env, func, (uint32_t)argc, cells)) {
        printf("trap: %s\n", wasm_runtime_get_exception(inst));
        goto out_env;
    }
    printf("%s result=%d\n",
           wasm_runtime_get_module_package_type(module) == Wasm_Module_AoT
               ? "aot"
               : "wasm",
           (int32_t)cells[0]);
    rc = 0;

out_env:
    wasm_runtime_destroy_exec_env(env);
out_inst:
    wasm_runtime_deinstantiate(inst);
    return rc;
}

int
main(int argc, char **argv)
{
    char error_buf[128];
    uint32_t cells[MAX_ARGS] = { 0 };
    uint32_t size = 0;
    uint8_t *buf;
    wasm_module_t module;
    int nargs, rc = 1;

    if (argc < 3 || (nargs = parse_args(argc - 3, argv + 3, cells)) < 0) {
        fprintf(stderr, "usage: aot-run FILE FUNC [I32 ARG]... (at most %d)\n",
                MAX_ARGS);
        return 2;
    }
    if (!wasm_runtime_init()) {
        fprintf(stderr, "aot-run: cannot initialise WAMR\n");
        return 1;
    }
    buf = (uint8_t *)bh_read_file_to_buffer(argv[1], &size);
    if (!buf) {
        fprintf(stderr, "aot-run: cannot read %s\n", argv[1]);
        goto out_rt;
    }
    module = wasm_runtime_load(buf, size, error_buf, sizeof(error_buf));
    if (!module) {
        fprintf(stderr, "aot-run: load: %s\n", error_buf);
        goto out_buf;
    }
    rc = call(module, argv[2], nargs, cells);
    wasm_runtime_unload(module);
out_buf:
    wasm_runtime_free(buf);
out_rt:
    wasm_runtime_destroy();
    return rc;
}
