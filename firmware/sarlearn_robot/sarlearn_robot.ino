// sarlearn robot firmware: the Arduino side of the serial protocol of
// sarlearn.robots.raspberry_pi (docs/robot.md).
//
// ASCII lines ending in '\n' at 115200 baud:
//   M <left> <right>   wheel PWM in [-255, 255], the sign is the direction; no answer
//   S                  stop both motors; no answer
//   G                  answer "G <left> <right>": the two light sensors, 10-bit (0..1023)
//   V                  answer "V sarlearn-robot <version>"
// Anything else is answered with "E <reason>", so a confused host sees why.
//
// Watchdog: the motors stop when no M command has arrived for WATCHDOG_MS, so a crashed
// or unplugged host never leaves the robot driving.
//
// Wiring (an L298N / L293D dual H-bridge, two light-dependent resistors in dividers):
//   left motor:  enable (PWM) pin 5, direction pins 4 and 7
//   right motor: enable (PWM) pin 6, direction pins 8 and 12
//   left light sensor A0, right light sensor A1

#include <Arduino.h>
#include <stdlib.h>

#define FIRMWARE_VERSION "1"
#define BAUD 115200UL
#define WATCHDOG_MS 500UL
#define LINE_MAX 32
#define SAMPLES 4  // analogRead averaged per reading (less noise, still 10 bits)

static const uint8_t LEFT_EN = 5, LEFT_A = 4, LEFT_B = 7;
static const uint8_t RIGHT_EN = 6, RIGHT_A = 8, RIGHT_B = 12;
static const uint8_t LEFT_SENSOR = A0, RIGHT_SENSOR = A1;

static char line[LINE_MAX];
static uint8_t length = 0;
static bool overflow = false;
static unsigned long last_motor_command = 0;
static bool driving = false;

// One motor: |pwm| on the enable pin, the sign on the two direction pins.
static void drive(uint8_t en, uint8_t a, uint8_t b, int pwm) {
  if (pwm > 255) pwm = 255;
  if (pwm < -255) pwm = -255;
  digitalWrite(a, pwm > 0 ? HIGH : LOW);
  digitalWrite(b, pwm < 0 ? HIGH : LOW);
  analogWrite(en, pwm < 0 ? -pwm : pwm);
}

static void stop_motors() {
  drive(LEFT_EN, LEFT_A, LEFT_B, 0);
  drive(RIGHT_EN, RIGHT_A, RIGHT_B, 0);
  driving = false;
}

static int read_sensor(uint8_t pin) {
  unsigned int sum = 0;
  for (uint8_t i = 0; i < SAMPLES; i++) sum += analogRead(pin);
  return (int)(sum / SAMPLES);
}

// Parse one signed integer after *p (spaces skipped); false if there is none.
static bool parse_int(char **p, long *value) {
  char *end;
  *value = strtol(*p, &end, 10);
  if (end == *p) return false;
  *p = end;
  return true;
}

static void handle(char *cmd) {
  char *p = cmd + 1;
  switch (cmd[0]) {
    case 'M': {
      long left, right;
      if (!parse_int(&p, &left) || !parse_int(&p, &right)) {
        Serial.println(F("E M needs two integers"));
        return;
      }
      drive(LEFT_EN, LEFT_A, LEFT_B, (int)constrain(left, -255L, 255L));
      drive(RIGHT_EN, RIGHT_A, RIGHT_B, (int)constrain(right, -255L, 255L));
      last_motor_command = millis();
      driving = true;
      return;
    }
    case 'S':
      stop_motors();
      return;
    case 'G':
      Serial.print(F("G "));
      Serial.print(read_sensor(LEFT_SENSOR));
      Serial.print(' ');
      Serial.println(read_sensor(RIGHT_SENSOR));
      return;
    case 'V':
      Serial.println(F("V sarlearn-robot " FIRMWARE_VERSION));
      return;
    case '\0':
      return;  // an empty line
    default:
      Serial.println(F("E unknown command"));
  }
}

void setup() {
  pinMode(LEFT_EN, OUTPUT);
  pinMode(LEFT_A, OUTPUT);
  pinMode(LEFT_B, OUTPUT);
  pinMode(RIGHT_EN, OUTPUT);
  pinMode(RIGHT_A, OUTPUT);
  pinMode(RIGHT_B, OUTPUT);
  stop_motors();
  Serial.begin(BAUD);
}

void loop() {
  while (Serial.available() > 0) {
    char c = (char)Serial.read();
    if (c == '\r') continue;
    if (c == '\n') {
      line[length] = '\0';
      if (overflow) {
        Serial.println(F("E line too long"));
      } else {
        handle(line);
      }
      length = 0;
      overflow = false;
    } else if (length < LINE_MAX - 1) {
      line[length++] = c;
    } else {
      overflow = true;
    }
  }
  // The watchdog: commands stopped coming, so the wheels stop.
  if (driving && millis() - last_motor_command > WATCHDOG_MS) stop_motors();
}
