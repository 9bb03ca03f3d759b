/* Smoke module for the bare-metal board: add(200, 26) must give 226. */
int add(int a, int b) { return a + b; }

/* Float through the hard-float ABI: fmadd(3, 4, 0.5) = 12.5. */
float fmadd(float a, float b, float c) { return a * b + c; }
