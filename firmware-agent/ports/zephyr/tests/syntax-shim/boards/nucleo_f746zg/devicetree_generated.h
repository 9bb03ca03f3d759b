/*
 * SYNTAX-CHECK SHIM, not Zephyr: the devicetree macros of nucleo_f746zg that the port uses, written by hand
 * in the form Zephyr generates them (node identifiers, chosen, aliases, status, ordinals) from
 * the board's .dts plus boards/nucleo_f746zg.overlay. The ordinals are arbitrary here. A device object
 * is declared for the "okay" nodes only, and only when its driver's Kconfig option is on
 * (CONFIG_SERIAL, CONFIG_GPIO): without the driver a real build fails to link (undefined
 * __device_dts_ord_N); here DEVICE_DT_GET fails to compile.
 */
#ifndef SHIM_DEVICETREE_GENERATED_H
#define SHIM_DEVICETREE_GENERATED_H

struct device;

/* chosen (boards/nucleo_f746zg.overlay) */
#define DT_N_CHOSEN_zephyr_shell_uart DT_N_S_soc_S_serial_40004800

/* the link UART */
#define DT_N_S_soc_S_serial_40004800_EXISTS 1
#define DT_N_S_soc_S_serial_40004800_ORD 41
#define DT_N_S_soc_S_serial_40004800_STATUS_okay 1
#if defined(CONFIG_SERIAL) /* the driver is built: its device object exists */
extern const struct device __device_dts_ord_41;
#endif

/* aliases: led0 */
#define DT_N_ALIAS_led0 DT_N_S_leds_S_led_0
#define DT_N_S_leds_S_led_0_EXISTS 1
#define DT_N_S_leds_S_led_0_ORD 52
#define DT_N_S_leds_S_led_0_STATUS_okay 1
#define DT_N_S_leds_S_led_0_P_gpios_IDX_0_PH DT_N_S_soc_S_pin_controller_40020000_S_gpio_40020400
#define DT_N_S_leds_S_led_0_P_gpios_IDX_0_VAL_pin 0
#define DT_N_S_leds_S_led_0_P_gpios_IDX_0_VAL_flags 0

/* the LED's GPIO controller */
#define DT_N_S_soc_S_pin_controller_40020000_S_gpio_40020400_EXISTS 1
#define DT_N_S_soc_S_pin_controller_40020000_S_gpio_40020400_ORD 17
#define DT_N_S_soc_S_pin_controller_40020000_S_gpio_40020400_STATUS_okay 1
#if defined(CONFIG_GPIO) /* the driver is built: its device object exists */
extern const struct device __device_dts_ord_17;
#endif

#endif
