/* The smallest useful module: add(200, 26) must give 226. */
int add(int a, int b) { return a + b; }

/* Reads far outside the module's linear memory: must trap, not crash. */
int oob(int offset) { return *(volatile int *)(0x7ff00000 + offset); }

/* Floating point through the hard-float ABI on Cortex-M4. */
float fmadd(float a, float b, float c) { return a * b + c; }
