/*
 * wamrc: compile a WebAssembly module into a WAMR AOT file.
 *
 * A small driver over WAMR's compilation library (core/iwasm/compilation)
 * with the command-line shape of upstream wamrc, so the gateway can drive
 * either one.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "aot_export.h"
#include "bh_log.h"
#include "bh_read_file.h"
#include "config.h"
#include "version.h"
#include "wasm_export.h"

#include "options.h"

/* Fill WAMR's compile options from what the user asked for. */
static void
fill_comp_option(AOTCompOption *opt, const struct wamrc_options *o)
{
    memset(opt, 0, sizeof(*opt));
    opt->target_arch = (char *)o->target;
    opt->target_cpu = (char *)o->cpu;
    opt->target_abi = (char *)o->target_abi;
    opt->cpu_features = (char *)o->cpu_features;
    opt->opt_level = o->opt_level;
    opt->size_level = o->size_level;
    opt->output_format = AOT_FORMAT_FILE;
    opt->bounds_checks = wamrc_options_bounds_checks(o);
    opt->stack_bounds_checks = (unsigned)o->stack_bounds_checks;
    /* Features are switched off again by WAMR when a module does not use
       them, so these defaults do not make plain modules need them. */
    opt->enable_simd = !o->disable_simd;
    opt->enable_bulk_memory = true;
    opt->enable_ref_types = true;
    opt->enable_aux_stack_check = true;
    opt->aux_stack_frame_type = AOT_STACK_FRAME_OFF;
    aot_call_stack_features_init_default(&opt->call_stack_features);
}

/* Compile the loaded module to out_path. Returns 0 or -1 (message printed). */
static int
compile_module(wasm_module_t module, const struct wamrc_options *o)
{
    AOTCompOption opt;
    aot_comp_data_t data = NULL;
    aot_comp_context_t ctx = NULL;
    int rc = -1;

    fill_comp_option(&opt, o);

    data = aot_create_comp_data(module, opt.target_arch, false);
    if (!data) {
        fprintf(stderr, "wamrc: %s\n", aot_get_last_error());
        goto out;
    }
    ctx = aot_create_comp_context(data, &opt);
    if (!ctx) {
        fprintf(stderr, "wamrc: %s\n", aot_get_last_error());
        goto out_data;
    }
    if (!aot_compile_wasm(ctx)) {
        fprintf(stderr, "wamrc: compile failed: %s\n", aot_get_last_error());
        goto out_ctx;
    }
    if (!aot_emit_aot_file(ctx, data, o->out_path)) {
        fprintf(stderr, "wamrc: cannot write %s: %s\n", o->out_path,
                aot_get_last_error());
        unlink(o->out_path);
        goto out_ctx;
    }
    rc = 0;

out_ctx:
    aot_destroy_comp_context(ctx);
out_data:
    aot_destroy_comp_data(data);
out:
    return rc;
}

/* Load the input module and compile it. Returns 0 or -1. */
static int
run(const struct wamrc_options *o)
{
    char error_buf[128];
    uint8_t *buf;
    uint32_t size = 0;
    wasm_module_t module;
    int rc = -1;

    buf = (uint8_t *)bh_read_file_to_buffer(o->in_path, &size);
    if (!buf) {
        fprintf(stderr, "wamrc: cannot read %s\n", o->in_path);
        return -1;
    }
    module = wasm_runtime_load(buf, size, error_buf, sizeof(error_buf));
    if (!module) {
        fprintf(stderr, "wamrc: %s is not a valid module: %s\n", o->in_path,
                error_buf);
        goto out_buf;
    }
    if (!aot_compiler_init()) {
        fprintf(stderr, "wamrc: cannot initialise LLVM\n");
        goto out_module;
    }
    rc = compile_module(module, o);
    aot_compiler_destroy();

out_module:
    wasm_runtime_unload(module);
out_buf:
    wasm_runtime_free(buf);
    return rc;
}

int
main(int argc, char **argv)
{
    struct wamrc_options o;
    RuntimeInitArgs init;
    int rc;

    if (wamrc_options_parse(&o, argc, argv, stderr) < 0)
        return 2;
    if (o.show_help) {
        wamrc_options_usage(stdout);
        return 0;
    }
    if (o.show_version) {
        printf("wamrc %d.%d.%d (wasmbed; AOT file version %d)\n",
               WAMR_VERSION_MAJOR, WAMR_VERSION_MINOR, WAMR_VERSION_PATCH,
               AOT_CURRENT_VERSION);
        return 0;
    }

    memset(&init, 0, sizeof(init));
    init.mem_alloc_type = Alloc_With_System_Allocator;
    if (!wasm_runtime_full_init(&init)) {
        fprintf(stderr, "wamrc: cannot initialise the WAMR runtime\n");
        return 1;
    }
    bh_log_set_verbose_level(o.verbose ? 3 : 1);

    rc = run(&o);
    wasm_runtime_destroy();
    if (rc == 0)
        printf("wamrc: wrote %s\n", o.out_path);
    return rc == 0 ? 0 : 1;
}
