/* SYNTAX-CHECK SHIM, not Zephyr: see ../../README.md. Zephyr checks LOG_* formats like printf
 * even when CONFIG_LOG=n; so does this shim. */
#ifndef SHIM_ZEPHYR_LOGGING_LOG_H
#define SHIM_ZEPHYR_LOGGING_LOG_H

#define LOG_LEVEL_ERR 1
#define LOG_LEVEL_WRN 2
#define LOG_LEVEL_INF 3

#define LOG_MODULE_REGISTER(name, ...) extern const int shim_log_module_##name

void shim_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#define LOG_ERR(...) shim_log(__VA_ARGS__)
#define LOG_WRN(...) shim_log(__VA_ARGS__)
#define LOG_INF(...) shim_log(__VA_ARGS__)

#endif
