/*
 * Command-line options of wamrc (the upstream wamrc shape, a subset).
 */
#ifndef WAMRC_OPTIONS_H
#define WAMRC_OPTIONS_H

#include <stdbool.h>
#include <stdio.h>

/** A tri-state flag: not given on the command line, or given as 0 / 1. */
enum wamrc_flag { WAMRC_FLAG_UNSET = 2, WAMRC_FLAG_OFF = 0, WAMRC_FLAG_ON = 1 };

/** What the user asked for; strings point into argv. */
struct wamrc_options {
    const char *target;       /**< --target=, NULL for the host */
    const char *cpu;          /**< --cpu= */
    const char *target_abi;   /**< --target-abi= */
    const char *cpu_features; /**< --cpu-features= */
    unsigned opt_level;       /**< --opt-level=0..3 (default 3) */
    unsigned size_level;      /**< --size-level=0..3 (default 3) */
    enum wamrc_flag bounds_checks;       /**< --bounds-checks= */
    enum wamrc_flag stack_bounds_checks; /**< --stack-bounds-checks= */
    bool disable_simd;        /**< --disable-simd */
    bool verbose;             /**< -v / --verbose */
    bool show_version;        /**< --version */
    bool show_help;           /**< -h / --help */
    const char *out_path;     /**< -o OUT */
    const char *in_path;      /**< the input .wasm */
};

/**
 * Parse argv into opts. Returns 0 on success, or -EINVAL after printing a
 * message naming the offending argument to err.
 */
int wamrc_options_parse(struct wamrc_options *opts, int argc, char **argv,
                        FILE *err);

/**
 * Resolve defaults that depend on the target: bounds checks are on for
 * targets without an MMU (thumb*, and every 32-bit target), as upstream.
 * Returns the effective value for WAMR's option (0, 1, or 2 = WAMR default).
 */
unsigned wamrc_options_bounds_checks(const struct wamrc_options *opts);

/** Print the usage text to out. */
void wamrc_options_usage(FILE *out);

#endif /* WAMRC_OPTIONS_H */
