#include "Akeru.h"

namespace {

const unsigned long COMMAND_TIMEOUT_MS = 3000;
const unsigned long SEND_TIMEOUT_MS = 30000;
const unsigned long DOWNLINK_TIMEOUT_MS = 45000;
// The library's own guard against sending too often, as in the real one.
const unsigned long LIBRARY_GAP_MS = 600000;

}  // namespace

Akeru::Akeru(unsigned int rx, unsigned int tx)
    : port_(rx, tx), last_send_ms_(0), has_sent_(false), echo_(false) {}

void Akeru::echoOn() { echo_ = true; }
void Akeru::echoOff() { echo_ = false; }

bool Akeru::begin() {
  port_.begin(9600);
  delay(2000);  // the TD1208 needs a moment after power-up
  has_sent_ = false;
  return sendAT();
}

bool Akeru::isReady() {
  return !has_sent_ || millis() - last_send_ms_ > LIBRARY_GAP_MS;
}

bool Akeru::sendAT() { return command(F("AT"), COMMAND_TIMEOUT_MS, NULL); }

bool Akeru::sendPayload(const String payload) {
  if (!isReady()) return false;
  String at = F("AT$SS=");
  at += payload;
  if (!command(at, SEND_TIMEOUT_MS, NULL)) return false;
  has_sent_ = true;
  last_send_ms_ = millis();
  return true;
}

bool Akeru::getTemperature(int *temperature) {
  String reply;
  if (!command(F("ATI26"), COMMAND_TIMEOUT_MS, &reply) || reply.length() == 0) return false;
  *temperature = reply.toInt();
  return true;
}

bool Akeru::getID(String *id) { return command(F("ATI7"), COMMAND_TIMEOUT_MS, id); }

bool Akeru::getVoltage(float *voltage) {
  String reply;
  if (!command(F("ATI27"), COMMAND_TIMEOUT_MS, &reply) || reply.length() == 0) return false;
  *voltage = reply.toFloat();
  return true;
}

bool Akeru::getHardware(String *hardware) { return command(F("ATI11"), COMMAND_TIMEOUT_MS, hardware); }

bool Akeru::getFirmware(String *firmware) { return command(F("ATI13"), COMMAND_TIMEOUT_MS, firmware); }

bool Akeru::getPower(int *power) {
  String reply;
  if (!command(F("ATS302?"), COMMAND_TIMEOUT_MS, &reply) || reply.length() == 0) return false;
  *power = reply.toInt();
  return true;
}

bool Akeru::setPower(int power) {
  String at = F("ATS302=");
  at += power;
  return command(at, COMMAND_TIMEOUT_MS, NULL);
}

// Sends a frame that asks for a downlink, then waits for the modem's
// "+RX=xx xx xx xx xx xx xx xx" line; data gets its 16 hex characters.
bool Akeru::receive(String *data) {
  if (!isReady()) return false;
  if (!command(F("AT$SB=1,2,1"), SEND_TIMEOUT_MS, NULL)) return false;

  String line;
  bool received = false;
  while (readLine(&line, DOWNLINK_TIMEOUT_MS)) {
    if (line.startsWith(F("+RX="))) {
      line.remove(0, 4);
      line.replace(" ", "");
      *data = line;
      received = true;
    } else if (line.startsWith(F("+RX END"))) {
      break;
    }
  }
  return received;
}

// Sends one command and reads lines up to "OK" or "ERROR"; the last other
// line (not the modem's echo of the command) is the reply.
bool Akeru::command(const String &at, unsigned long timeout_ms, String *reply) {
  port_.listen();
  while (port_.available() > 0) port_.read();
  if (echo_) {
    Serial.print(F(">> "));
    Serial.println(at);
  }
  port_.print(at);
  port_.print(F("\r\n"));

  String line;
  while (readLine(&line, timeout_ms)) {
    if (line == "OK") return true;
    if (line == "ERROR") return false;
    if (reply != NULL && line.length() > 0 && line != at) *reply = line;
  }
  return false;
}

bool Akeru::readLine(String *line, unsigned long timeout_ms) {
  *line = "";
  const unsigned long started_ms = millis();
  while (millis() - started_ms < timeout_ms) {
    if (port_.available() <= 0) continue;
    const char c = port_.read();
    if (c == '\n') {
      if (echo_) {
        Serial.print(F("<< "));
        Serial.println(*line);
      }
      return true;
    }
    if (c != '\r') *line += c;
  }
  return false;
}

// Bytes as they lie in memory (little-endian on the AVR), lower-case hex.
String Akeru::hexOf(const void *bytes, int count) {
  String hex;
  const uint8_t *byte_at = static_cast<const uint8_t *>(bytes);
  for (int i = 0; i < count; ++i) {
    hex += "0123456789abcdef"[byte_at[i] >> 4];
    hex += "0123456789abcdef"[byte_at[i] & 0x0F];
  }
  return hex;
}

String Akeru::toHex(int i) { return hexOf(&i, sizeof i); }
String Akeru::toHex(unsigned int i) { return hexOf(&i, sizeof i); }
String Akeru::toHex(long l) { return hexOf(&l, sizeof l); }
String Akeru::toHex(unsigned long ul) { return hexOf(&ul, sizeof ul); }
String Akeru::toHex(float f) { return hexOf(&f, sizeof f); }
String Akeru::toHex(double d) { return hexOf(&d, sizeof d); }
String Akeru::toHex(char c) { return hexOf(&c, 1); }
String Akeru::toHex(char *c, int length) { return hexOf(c, length); }
String Akeru::toHex(int8_t i) { return hexOf(&i, 1); }
String Akeru::toHex(uint8_t ui) { return hexOf(&ui, 1); }
