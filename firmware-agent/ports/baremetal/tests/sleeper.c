/* A job that only ends when stopped: waits through the delay_ms native. */
__attribute__((import_module("env"), import_name("delay_ms"))) void delay_ms(int ms);

void app_main(void)
{
    for (;;)
        delay_ms(50);
}
