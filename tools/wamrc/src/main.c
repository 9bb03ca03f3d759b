/*
 * wamrc: compile a WebAssembly module into a WAMR AOT file.
 *
 * A small driver over WAMR's compilation library (core/iwasm/compilation)
 * with the command-line shape of upstream wamrc, so the gateway can drive
 * either one.
 */
#include <errno.h>
#include <stdint.h>
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

/*
 * The Wasmbed target descriptor (docs/PROTOCOL.md "AOT target descriptor"): an AOT custom
 * section (type 100) of sub-type WASMBED_AOT_TARGET, appended after WAMR's last section, whose
 * body is `key=value` lines naming exactly what the code was built for. WAMR's loader skips
 * custom sub-types it does not know; the gateway and the agent compare it with the device's INFO.
 */
#define AOT_SECTION_CUSTOM 100u
#define WASMBED_AOT_TARGET 0x57424154u /* "TABW" little-endian: Wasmbed AOT Target */

static void
put_u32(FILE *f, uint32_t v)
{
    uint8_t b[4] = { (uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16),
                     (uint8_t)(v >> 24) };
    fwrite(b, 1, 4, f);
}

/* Append the descriptor to the AOT file at path. Returns 0 or -1 (message printed). */
static int
append_target_descriptor(const struct wamrc_options *o, unsigned bounds_checks)
{
    char text[512];
    int n;
    long size;
    FILE *f = fopen(o->out_path, "r+b");

    if (!f) {
        fprintf(stderr, "wamrc: cannot reopen %s: %s\n", o->out_path, strerror(errno));
        return -1;
    }
    n = snprintf(text, sizeof(text),
                 "wasmbed-aot-target=1\narch=%s\ncpu=%s\nfeatures=%s\nabi=%s\n"
                 "bounds_checks=%u\naot_version=%d\ncompiler=wamrc %d.%d.%d wasmbed\n",
                 o->target ? o->target : "host", o->cpu ? o->cpu : "generic",
                 o->cpu_features && *o->cpu_features ? o->cpu_features : "none",
                 o->target_abi ? o->target_abi : "gnu", bounds_checks, AOT_CURRENT_VERSION,
                 WAMR_VERSION_MAJOR, WAMR_VERSION_MINOR, WAMR_VERSION_PATCH);
    if (n < 0 || (size_t)n >= sizeof(text) || fseek(f, 0, SEEK_END) != 0
        || (size = ftell(f)) < 0) {
        fprintf(stderr, "wamrc: cannot append the target descriptor to %s\n", o->out_path);
        fclose(f);
        return -1;
    }
    /* sections start 4-byte aligned (the loader aligns before each u32) */
    while (size % 4) {
        fputc(0, f);
        size++;
    }
    put_u32(f, AOT_SECTION_CUSTOM);
    put_u32(f, 4u + (uint32_t)n);
    put_u32(f, WASMBED_AOT_TARGET);
    fwrite(text, 1, (size_t)n, f);
    if (fclose(f) != 0) {
        fprintf(stderr, "wamrc: cannot write %s: %s\n", o->out_path, strerror(errno));
        return -1;
    }
    return 0;
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
    /* wamrc_options_bounds_checks gives 2 (WAMR's default) only for 64-bit targets, where
       WAMR then relies on hardware bounds checks: the code has none of its own */
    if (append_target_descriptor(o, opt.bounds_checks == 1 ? 1 : 0) != 0) {
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
