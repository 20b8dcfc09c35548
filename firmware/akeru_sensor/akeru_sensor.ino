// Akeru sensor: sends the TD1208 modem's temperature and supply voltage (and
// an optional analog sensor) over Sigfox, within 140 uplinks a day, and takes
// its settings from downlinks. The logic is in sensor_logic.cpp; the payload
// and downlink layouts are in ../README.md.

#include <Akeru.h>
#include "sensor_logic.h"

// Akeru board: the TD1208 is wired to D4 (its TX) and D5 (its RX).
// Akene shield: swap them. TD1208 breakout: your pick.
const uint8_t MODEM_TX_PIN = 4;
const uint8_t MODEM_RX_PIN = 5;

// The pin of an analog sensor (A1 to A5), or NO_ANALOG_PIN when none is
// wired. A0 is left floating: it seeds random() for demo mode.
const int ANALOG_SENSOR_PIN = NO_ANALOG_PIN;

// true sends the tutorial's random 0..99 as temp instead of the modem's
// reading (a downlink can switch it later).
const bool DEMO_MODE_AT_BOOT = false;

const unsigned long MODEM_RETRY_MS = 10000;

Akeru akeru(MODEM_RX_PIN, MODEM_TX_PIN);
SensorLogic sensor(akeru, ANALOG_SENSOR_PIN, DEMO_MODE_AT_BOOT);

void setup() {
  Serial.begin(9600);
  while (!sensor.begin()) {
    Serial.println(F("TD1208 not answering, trying again"));
    delay(MODEM_RETRY_MS);
  }
}

void loop() {
  sensor.poll();
}
