/*
 * SYNTAX-CHECK SHIM, not Zephyr: the devicetree macros of nucleo_f446re that the port uses, written by hand
 * in the form Zephyr generates them (node identifiers, chosen, aliases, status, ordinals) from
 * the board's .dts plus boards/nucleo_f446re.overlay. The ordinals are arbitrary here. A device object
 * is declared for the "okay" nodes only, and only when its driver's Kconfig option is on
 * (CONFIG_SERIAL, CONFIG_GPIO): without the driver a real build fails to link (undefined
 * __device_dts_ord_N); here DEVICE_DT_GET fails to compile.
 */
#ifndef SHIM_DEVICETREE_GENERATED_H
#define SHIM_DEVICETREE_GENERATED_H

struct device;

/* chosen (boards/nucleo_f446re.overlay) */
#define DT_N_CHOSEN_zephyr_shell_uart DT_N_S_soc_S_serial_40004400

/* the link UART */
#define DT_N_S_soc_S_serial_40004400_EXISTS 1
#define DT_N_S_soc_S_serial_40004400_ORD 41
#define DT_N_S_soc_S_serial_40004400_STATUS_okay 1
#if defined(CONFIG_SERIAL) /* the driver is built: its device object exists */
extern const struct device __device_dts_ord_41;
#endif

/* aliases: led0 */
#define DT_N_ALIAS_led0 DT_N_S_leds_S_led_2
#define DT_N_S_leds_S_led_2_EXISTS 1
#define DT_N_S_leds_S_led_2_ORD 52
#define DT_N_S_leds_S_led_2_STATUS_okay 1
#define DT_N_S_leds_S_led_2_P_gpios_IDX_0_PH DT_N_S_soc_S_pin_controller_40020000_S_gpio_40020000
#define DT_N_S_leds_S_led_2_P_gpios_IDX_0_VAL_pin 5
#define DT_N_S_leds_S_led_2_P_gpios_IDX_0_VAL_flags 0

/* the LED's GPIO controller */
#define DT_N_S_soc_S_pin_controller_40020000_S_gpio_40020000_EXISTS 1
#define DT_N_S_soc_S_pin_controller_40020000_S_gpio_40020000_ORD 17
#define DT_N_S_soc_S_pin_controller_40020000_S_gpio_40020000_STATUS_okay 1
#if defined(CONFIG_GPIO) /* the driver is built: its device object exists */
extern const struct device __device_dts_ord_17;
#endif

#endif
