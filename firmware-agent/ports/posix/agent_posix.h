/* POSIX port of the Wasmbed agent: the simulated board's C entry point. */
#ifndef WASMBED_AGENT_POSIX_H
#define WASMBED_AGENT_POSIX_H

/**
 * Run the simulated board with command-line arguments (see --help). Returns the process exit
 * code: 0 after SIGINT/SIGTERM or end of stdin, 2 on bad arguments, 1 on other errors.
 */
int wasmbed_agent_sim_main(int argc, char **argv);

#endif
