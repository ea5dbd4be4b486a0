/*
 * Run the robot's firmware in simavr with its UART on a pseudo-terminal.
 *
 *   bridge FIRMWARE.elf [LEFT_MV RIGHT_MV]
 *
 * Prints "pty PATH" (the pseudo-terminal) on stdout, then "pin D4 1" for every change of a
 * motor direction pin (simavr adds lines of its own), so a test can talk to the firmware over
 * the serial protocol and watch what it does to the motors. The light sensors read LEFT_MV and
 * RIGHT_MV millivolts on A0 and A1 (of 5000: reading = mV * 1023 / 5000).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <simavr/avr_adc.h>
#include <simavr/avr_ioport.h>
#include <simavr/parts/uart_pty.h>
#include <simavr/sim_avr.h>
#include <simavr/sim_elf.h>

static void pin_changed(struct avr_irq_t *irq, uint32_t value, void *param) {
  (void)irq;
  printf("pin %s %u\n", (const char *)param, value);
  fflush(stdout);
}

static void watch(avr_t *avr, char port, int bit, const char *name) {
  avr_irq_register_notify(avr_io_getirq(avr, AVR_IOCTL_IOPORT_GETIRQ(port), bit), pin_changed,
                          (void *)name);
}

int main(int argc, char **argv) {
  if (argc != 2 && argc != 4) {
    fprintf(stderr, "usage: %s FIRMWARE.elf [LEFT_MV RIGHT_MV]\n", argv[0]);
    return 2;
  }
  elf_firmware_t fw;
  memset(&fw, 0, sizeof(fw));
  if (elf_read_firmware(argv[1], &fw) != 0) {
    fprintf(stderr, "cannot read %s\n", argv[1]);
    return 1;
  }
  strcpy(fw.mmcu, "atmega328p");
  fw.frequency = 16000000;
  avr_t *avr = avr_make_mcu_by_name(fw.mmcu);
  if (!avr) return 1;
  avr_init(avr);
  avr_load_firmware(avr, &fw);
  avr->vcc = avr->avcc = avr->aref = 5000;

  static uart_pty_t pty;
  uart_pty_init(avr, &pty);
  uart_pty_connect(&pty, '0');
  printf("pty %s\n", pty.port[0].slavename);
  fflush(stdout);

  uint32_t left = argc == 4 ? (uint32_t)atoi(argv[2]) : 1000;
  uint32_t right = argc == 4 ? (uint32_t)atoi(argv[3]) : 4000;
  avr_raise_irq(avr_io_getirq(avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC0), left);
  avr_raise_irq(avr_io_getirq(avr, AVR_IOCTL_ADC_GETIRQ, ADC_IRQ_ADC1), right);
  /* Direction pins: left motor 4 and 7 (PD4, PD7), right motor 8 and 12 (PB0, PB4). */
  watch(avr, 'D', 4, "D4");
  watch(avr, 'D', 7, "D7");
  watch(avr, 'B', 0, "B0");
  watch(avr, 'B', 4, "B4");

  for (;;) {
    int state = avr_run(avr);
    if (state == cpu_Done || state == cpu_Crashed) break;
  }
  uart_pty_stop(&pty);
  return 0;
}
