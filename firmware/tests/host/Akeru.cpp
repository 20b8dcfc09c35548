#include "Akeru.h"

Akeru::Akeru(unsigned int rx, unsigned int tx)
    : modem_answers(true),
      temperature_c(20),
      temperature_ok(true),
      voltage_v(3.3f),
      voltage_ok(true),
      has_sent_(false),
      last_send_ms_(0),
      send_calls_(0) {
  (void)rx;
  (void)tx;
}

void Akeru::echoOn() {}
void Akeru::echoOff() {}

bool Akeru::begin() {
  delay(BEGIN_MS);
  return modem_answers;
}

bool Akeru::isReady() {
  return !has_sent_ || (uint32_t)(millis() - last_send_ms_) > LIBRARY_GAP_MS;
}

bool Akeru::atCommand() {
  delay(AT_COMMAND_MS);
  return modem_answers;
}

bool Akeru::sendAT() { return atCommand(); }

bool Akeru::sendPayload(const String payload) {
  Uplink uplink = {host::clock_ms, false, payload.c_str(), false};
  const bool told_to_fail = failing_sends.count(send_calls_++) != 0;
  uplink.ok = isReady() && !told_to_fail && modem_answers;
  uplinks.push_back(uplink);
  delay(SEND_MS);
  if (uplink.ok) {
    has_sent_ = true;
    last_send_ms_ = (uint32_t)uplink.at_ms;
  }
  return uplink.ok;
}

bool Akeru::getTemperature(int *temperature) {
  if (!atCommand() || !temperature_ok) return false;
  *temperature = temperature_c;
  return true;
}

bool Akeru::getID(String *id) {
  if (!atCommand()) return false;
  *id = "1A2B3C";
  return true;
}

bool Akeru::getVoltage(float *voltage) {
  if (!atCommand() || !voltage_ok) return false;
  *voltage = voltage_v;
  return true;
}

bool Akeru::getHardware(String *hardware) {
  if (!atCommand()) return false;
  *hardware = "TD1208";
  return true;
}

bool Akeru::getFirmware(String *firmware) {
  if (!atCommand()) return false;
  *firmware = "SOFT2067";
  return true;
}

bool Akeru::getPower(int *power) {
  if (!atCommand()) return false;
  *power = 14;
  return true;
}

bool Akeru::setPower(int power) { return atCommand() && power >= 0 && power <= 14; }

bool Akeru::receive(String *data) {
  Uplink uplink = {host::clock_ms, true, "", false};
  if (isReady() && modem_answers && !downlinks.empty()) {
    uplink.hex = downlinks.front();
    uplink.ok = !uplink.hex.empty();
    downlinks.pop_front();
  }
  uplinks.push_back(uplink);
  delay(RECEIVE_MS);
  if (uplink.ok) *data = uplink.hex.c_str();
  return uplink.ok;
}

// The real toHex() dumps AVR memory: little-endian, int 2 bytes, long and
// double 4 bytes (double is a float there), lower-case hex.
String Akeru::hexOf(const void *bytes, size_t count) {
  String hex;
  const uint8_t *byte_at = static_cast<const uint8_t *>(bytes);
  for (size_t i = 0; i < count; ++i) {
    hex += "0123456789abcdef"[byte_at[i] >> 4];
    hex += "0123456789abcdef"[byte_at[i] & 0x0F];
  }
  return hex;
}

String Akeru::toHex(int i) {
  const int16_t avr = i;
  return hexOf(&avr, sizeof avr);
}

String Akeru::toHex(unsigned int i) {
  const uint16_t avr = i;
  return hexOf(&avr, sizeof avr);
}

String Akeru::toHex(long l) {
  const int32_t avr = l;
  return hexOf(&avr, sizeof avr);
}

String Akeru::toHex(unsigned long ul) {
  const uint32_t avr = ul;
  return hexOf(&avr, sizeof avr);
}

String Akeru::toHex(float f) { return hexOf(&f, sizeof f); }

String Akeru::toHex(double d) {
  const float avr = d;
  return hexOf(&avr, sizeof avr);
}

String Akeru::toHex(char c) { return hexOf(&c, 1); }
String Akeru::toHex(char *c, int length) { return hexOf(c, length > 0 ? length : 0); }
String Akeru::toHex(int8_t i) { return hexOf(&i, 1); }
String Akeru::toHex(uint8_t ui) { return hexOf(&ui, 1); }
