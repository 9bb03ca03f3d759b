/*
 * Command-line parsing of wamrc.
 */
#include "options.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* If arg is "<name>=<value>", return the value, else NULL. */
static const char *
opt_value(const char *arg, const char *name)
{
    size_t n = strlen(name);

    if (strncmp(arg, name, n) == 0 && arg[n] == '=')
        return arg + n + 1;
    return NULL;
}

static int
parse_level(const char *text, const char *name, unsigned *out, FILE *err)
{
    char *end;
    unsigned long v;

    errno = 0;
    v = strtoul(text, &end, 10);
    if (errno || end == text || *end != '\0' || v > 3) {
        fprintf(err, "wamrc: %s must be 0..3, got '%s'\n", name, text);
        return -EINVAL;
    }
    *out = (unsigned)v;
    return 0;
}

static int
parse_flag(const char *text, const char *name, enum wamrc_flag *out, FILE *err)
{
    if (strcmp(text, "0") == 0) {
        *out = WAMRC_FLAG_OFF;
        return 0;
    }
    if (strcmp(text, "1") == 0) {
        *out = WAMRC_FLAG_ON;
        return 0;
    }
    fprintf(err, "wamrc: %s must be 0 or 1, got '%s'\n", name, text);
    return -EINVAL;
}

static int
require_nonempty(const char *value, const char *name, FILE *err)
{
    if (*value == '\0') {
        fprintf(err, "wamrc: %s needs a value\n", name);
        return -EINVAL;
    }
    return 0;
}

/* Handle one "--name=value" argument; returns 1 if it was not one of ours. */
static int
parse_keyed(struct wamrc_options *o, const char *a, FILE *err)
{
    const char *v;

    if ((v = opt_value(a, "--target"))) {
        o->target = v;
        return require_nonempty(v, "--target", err);
    }
    if ((v = opt_value(a, "--cpu"))) {
        o->cpu = v;
        return require_nonempty(v, "--cpu", err);
    }
    if ((v = opt_value(a, "--target-abi"))) {
        o->target_abi = v;
        return require_nonempty(v, "--target-abi", err);
    }
    if ((v = opt_value(a, "--cpu-features"))) {
        o->cpu_features = v;
        return require_nonempty(v, "--cpu-features", err);
    }
    if ((v = opt_value(a, "--opt-level")))
        return parse_level(v, "--opt-level", &o->opt_level, err);
    if ((v = opt_value(a, "--size-level")))
        return parse_level(v, "--size-level", &o->size_level, err);
    if ((v = opt_value(a, "--bounds-checks")))
        return parse_flag(v, "--bounds-checks", &o->bounds_checks, err);
    if ((v = opt_value(a, "--stack-bounds-checks")))
        return parse_flag(v, "--stack-bounds-checks", &o->stack_bounds_checks,
                          err);
    return 1;
}

int
wamrc_options_parse(struct wamrc_options *o, int argc, char **argv, FILE *err)
{
    int i, rc;

    memset(o, 0, sizeof(*o));
    o->opt_level = 3;
    o->size_level = 3;
    o->bounds_checks = WAMRC_FLAG_UNSET;
    o->stack_bounds_checks = WAMRC_FLAG_UNSET;

    for (i = 1; i < argc; i++) {
        const char *a = argv[i];

        if (strcmp(a, "--version") == 0) {
            o->show_version = true;
        }
        else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
            o->show_help = true;
        }
        else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
            o->verbose = true;
        }
        else if (strcmp(a, "--disable-simd") == 0) {
            o->disable_simd = true;
        }
        else if (strcmp(a, "-o") == 0) {
            if (i + 1 >= argc || argv[i + 1][0] == '\0') {
                fprintf(err, "wamrc: -o needs an output file\n");
                return -EINVAL;
            }
            o->out_path = argv[++i];
        }
        else if (a[0] == '-' && a[1] != '\0') {
            rc = parse_keyed(o, a, err);
            if (rc < 0)
                return rc;
            if (rc > 0) {
                fprintf(err, "wamrc: unknown option '%s' (see --help)\n", a);
                return -EINVAL;
            }
        }
        else if (o->in_path) {
            fprintf(err, "wamrc: more than one input file ('%s', '%s')\n",
                    o->in_path, a);
            return -EINVAL;
        }
        else {
            o->in_path = a;
        }
    }

    if (o->show_version || o->show_help)
        return 0;
    if (!o->in_path) {
        fprintf(err, "wamrc: no input .wasm file given (see --help)\n");
        return -EINVAL;
    }
    if (!o->out_path) {
        fprintf(err, "wamrc: no output file given: use -o OUT\n");
        return -EINVAL;
    }
    return 0;
}

unsigned
wamrc_options_bounds_checks(const struct wamrc_options *o)
{
    if (o->bounds_checks != WAMRC_FLAG_UNSET)
        return (unsigned)o->bounds_checks;
    /* MMU-less microcontrollers cannot trap out-of-bounds accesses with
       guard pages: always check in code there. */
    if (o->target && strncmp(o->target, "thumb", 5) == 0)
        return 1;
    /* Elsewhere WAMR decides (on for 32-bit, off for 64-bit targets). */
    return 2;
}

void
wamrc_options_usage(FILE *out)
{
    fputs(
        "Usage: wamrc [options] -o OUT IN.wasm\n"
        "Compile a WebAssembly module to a WAMR AOT file.\n"
        "\n"
        "  --target=<arch>          x86_64, i386, aarch64, armv7, thumbv7em, "
        "riscv32, ...\n"
        "                           (default: the host)\n"
        "  --cpu=<cpu>              e.g. cortex-m4, generic\n"
        "  --target-abi=<abi>       e.g. gnu, eabi, eabihf\n"
        "  --cpu-features=<list>    e.g. +vfp4sp,-d32 (needs --cpu)\n"
        "  --opt-level=0..3         LLVM optimisation level (default 3)\n"
        "  --size-level=0..3        code model: 0 large .. 3 small (default "
        "3)\n"
        "  --bounds-checks=0|1      memory bounds checks in code (default: on "
        "for\n"
        "                           thumb* and 32-bit targets)\n"
        "  --stack-bounds-checks=0|1 native stack checks (default: as "
        "--bounds-checks)\n"
        "  --disable-simd           reject modules that use SIMD\n"
        "  -v, --verbose            print WAMR's compile log\n"
        "  --version                print the version and exit\n"
        "  -h, --help               print this help and exit\n",
        out);
}
