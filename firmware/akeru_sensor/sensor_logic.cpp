#include "sensor_logic.h"

namespace {

void putUint16LE(uint8_t *out, uint16_t value) {
  out[0] = value & 0xFF;
  out[1] = value >> 8;
}

int8_t hexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// -128 is kept for "no reading", so real values stop at -127.
int8_t clampTempC(int temp_c) {
  if (temp_c < -127) return -127;
  if (temp_c > 127) return 127;
  return temp_c;
}

uint16_t voltsToMillivolts(float volts) {
  if (!(volts > 0.0f)) return 0;  // also catches NaN
  if (volts >= 65.535f) return 65535;
  return (uint16_t)(volts * 1000.0f + 0.5f);
}

}  // namespace

void encodePayload(const Reading &reading, uint8_t out[PAYLOAD_LEN]) {
  out[0] = (uint8_t)reading.temp_c;
  putUint16LE(out + 1, reading.vbat_mv);
  putUint16LE(out + 3, reading.analog_raw);
  putUint16LE(out + 5, reading.interval_s);
  out[7] = reading.flags;
}

bool parseDownlink(const String &text, DownlinkCommand *command) {
  uint8_t bytes[DOWNLINK_LEN] = {0};
  uint8_t digits = 0;
  for (unsigned int i = 0; i < text.length(); ++i) {
    const char c = text.charAt(i);
    if (c == ' ' || c == '=') continue;
    const int8_t value = hexDigit(c);
    if (value < 0 || digits == 2 * DOWNLINK_LEN) return false;
    if (digits % 2 == 0) {
      bytes[digits / 2] = value << 4;
    } else {
      bytes[digits / 2] |= value;
    }
    ++digits;
  }
  if (digits != 2 * DOWNLINK_LEN || bytes[0] != DOWNLINK_VERSION) return false;

  command->demo = bytes[1] <= 1 ? bytes[1] : -1;
  command->interval_s = (uint16_t)bytes[2] << 8 | bytes[3];
  return true;
}

bool intervalElapsed(uint32_t now_ms, uint32_t since_ms, uint32_t interval_ms) {
  return (uint32_t)(now_ms - since_ms) >= interval_ms;
}

SensorLogic::SensorLogic(Akeru &modem, int analog_pin, bool demo_at_boot)
    : modem_(modem),
      analog_pin_(analog_pin),
      demo_(demo_at_boot),
      interval_s_(MIN_INTERVAL_S),
      has_uplinked_(false),
      last_uplink_ms_(0),
      slot_count_(0),
      last_send_failed_(false),
      boot_(true) {}

bool SensorLogic::begin() {
  if (!modem_.begin()) return false;
  randomSeed(analogRead(RANDOM_SEED_PIN));

  String id;
  if (modem_.getID(&id)) {
    Serial.print(F("device "));
    Serial.println(id);
  }
  Serial.print(F("payload config: "));
  Serial.println(F(PAYLOAD_CONFIG));
  return true;
}

bool SensorLogic::uplinkAllowed(uint32_t now_ms) const {
  return !has_uplinked_ || intervalElapsed(now_ms, last_uplink_ms_, MIN_INTERVAL_MS);
}

bool SensorLogic::slotDue(uint32_t now_ms) const {
  return !has_uplinked_ || intervalElapsed(now_ms, last_uplink_ms_, interval_s_ * 1000UL);
}

// Stamped right before the radio call, after the readings, so the stamps are
// as far apart as the transmissions themselves. A failed send keeps its
// stamp: the modem may have been on air, so it counts against the budget.
bool SensorLogic::claimUplinkSlot() {
  const uint32_t now_ms = millis();
  if (!uplinkAllowed(now_ms)) {
    Serial.println(F("uplink refused: too soon for the daily budget"));
    return false;
  }
  has_uplinked_ = true;
  last_uplink_ms_ = now_ms;
  return true;
}

void SensorLogic::poll() {
  if (!slotDue(millis())) return;
  const bool ask_downlink = slot_count_ % DOWNLINK_EVERY_N == DOWNLINK_SLOT;
  ++slot_count_;
  if (ask_downlink) {
    requestDownlink();
  } else {
    sendReadings();
  }
}

Reading SensorLogic::measure() {
  Reading reading;
  reading.flags = 0;

  int temp_c;
  if (demo_) {
    reading.temp_c = (int8_t)random(100);  // the tutorial's demo value
    reading.flags |= FLAG_DEMO;
  } else if (modem_.getTemperature(&temp_c)) {
    reading.temp_c = clampTempC(temp_c);
  } else {
    reading.temp_c = TEMP_UNREADABLE;
    reading.flags |= FLAG_TEMP_ERROR;
  }

  float vbat_v;
  if (modem_.getVoltage(&vbat_v)) {
    reading.vbat_mv = voltsToMillivolts(vbat_v);
  } else {
    reading.vbat_mv = 0;
    reading.flags |= FLAG_VBAT_ERROR;
  }

  if (analog_pin_ == NO_ANALOG_PIN) {
    reading.analog_raw = 0;
  } else {
    reading.analog_raw = analogRead(analog_pin_);
    reading.flags |= FLAG_ANALOG_ON;
  }

  reading.interval_s = interval_s_;
  if (last_send_failed_) reading.flags |= FLAG_LAST_SEND_FAILED;
  if (boot_) reading.flags |= FLAG_BOOT;
  return reading;
}

void SensorLogic::sendReadings() {
  uint8_t frame[PAYLOAD_LEN];
  encodePayload(measure(), frame);
  const String hex = modem_.toHex(reinterpret_cast<char *>(frame), PAYLOAD_LEN);
  if (!claimUplinkSlot()) return;

  if (modem_.sendPayload(hex)) {
    Serial.print(F("sent "));
    Serial.println(hex);
    last_send_failed_ = false;
    boot_ = false;
  } else {
    // Not resent now: the next slot carries fresh readings and says so.
    Serial.print(F("send failed: "));
    Serial.println(hex);
    last_send_failed_ = true;
  }
}

void SensorLogic::requestDownlink() {
  if (!claimUplinkSlot()) return;

  String answer;
  if (!modem_.receive(&answer)) {
    Serial.println(F("no downlink"));
    return;
  }
  DownlinkCommand command;
  if (!parseDownlink(answer, &command)) {
    Serial.print(F("downlink ignored: "));
    Serial.println(answer);
    return;
  }
  applyDownlink(command);
  Serial.print(F("downlink applied: interval "));
  Serial.print(interval_s_);
  Serial.print(F(" s, demo "));
  Serial.println(demo_ ? F("on") : F("off"));
}

void SensorLogic::applyDownlink(const DownlinkCommand &command) {
  if (command.demo >= 0) demo_ = command.demo;
  if (command.interval_s == 0) return;
  interval_s_ = command.interval_s < MIN_INTERVAL_S ? MIN_INTERVAL_S : command.interval_s;
}
