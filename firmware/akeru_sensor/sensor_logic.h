// What the Akeru sensor measures, how it packs a frame and when it may use
// the radio. Kept out of the .ino, and limited to the Arduino and Akeru APIs,
// so that firmware/tests/ can run it on a PC against stand-ins of both.
// The payload and downlink layouts are documented in firmware/README.md.

#ifndef SENSOR_LOGIC_H
#define SENSOR_LOGIC_H

#include <Arduino.h>
#include <Akeru.h>

// The Sigfox custom payload config of the uplink frame below. The backend's
// device type and our server decode with it; firmware/PAYLOAD_CONFIG holds
// the same line and a host test checks that the two agree.
#define PAYLOAD_CONFIG "temp::int:8 vbat_mv::uint:16:little-endian analog_raw::uint:16:little-endian interval_s::uint:16:little-endian demo:7:bool:0 temp_error:7:bool:1 vbat_error:7:bool:2 last_send_failed:7:bool:3 analog_on:7:bool:4 boot:7:bool:5"

// At most 140 uplinks a day: 86400 s / 140 = 617.14 s. Rounded up to a whole
// second, because 617 s would let a 24-hour window hold a 141st uplink.
const uint16_t MIN_INTERVAL_S = 618;
const uint32_t MIN_INTERVAL_MS = MIN_INTERVAL_S * 1000UL;

// One uplink in DOWNLINK_EVERY_N asks for a downlink (the 2nd after boot, so a
// new board picks up its settings early, then every 36th). 140 / 36 < 4 keeps
// within the 4 downlinks a day of the largest Sigfox contract.
const uint8_t DOWNLINK_EVERY_N = 36;
const uint8_t DOWNLINK_SLOT = 1;

const uint8_t PAYLOAD_LEN = 8;
const uint8_t DOWNLINK_LEN = 8;
const uint8_t DOWNLINK_VERSION = 0x01;

// Sent as temp when the modem gives no temperature (temp_error is set too).
const int8_t TEMP_UNREADABLE = -128;
const int NO_ANALOG_PIN = -1;
const uint8_t RANDOM_SEED_PIN = A0;

// Bits of payload byte 7, in PAYLOAD_CONFIG order.
const uint8_t FLAG_DEMO = 1 << 0;
const uint8_t FLAG_TEMP_ERROR = 1 << 1;
const uint8_t FLAG_VBAT_ERROR = 1 << 2;
const uint8_t FLAG_LAST_SEND_FAILED = 1 << 3;
const uint8_t FLAG_ANALOG_ON = 1 << 4;
const uint8_t FLAG_BOOT = 1 << 5;

struct Reading {
  int8_t temp_c;
  uint16_t vbat_mv;
  uint16_t analog_raw;
  uint16_t interval_s;
  uint8_t flags;
};

struct DownlinkCommand {
  int8_t demo;          // 0 off, 1 on, -1 leave as it is
  uint16_t interval_s;  // 0 leaves the interval as it is
};

// Packs a reading in the PAYLOAD_CONFIG layout (little-endian, as toHex).
void encodePayload(const Reading &reading, uint8_t out[PAYLOAD_LEN]);

// Reads the 16 hex characters of a downlink. Spaces and '=' are skipped
// because the Snootlab library's receive() leaves a leading '='. False when
// it is not 8 bytes of hex or not layout version 1.
bool parseDownlink(const String &text, DownlinkCommand *command);

// Whether interval_ms has passed since since_ms. Unsigned subtraction keeps
// this right when millis() wraps around 2^32 (every 49.7 days).
bool intervalElapsed(uint32_t now_ms, uint32_t since_ms, uint32_t interval_ms);

class SensorLogic {
 public:
  SensorLogic(Akeru &modem, int analog_pin, bool demo_at_boot);

  // Checks the modem and prints the device id and payload config; false when
  // the modem does not answer (no radio use, so it is safe to retry).
  bool begin();

  // Call from loop(): sends readings or asks for a downlink when a slot is due.
  void poll();

  // The send gate: false until MIN_INTERVAL_MS after the last uplink, whatever
  // the configured interval. Every uplink goes through claimUplinkSlot().
  bool uplinkAllowed(uint32_t now_ms) const;

  void applyDownlink(const DownlinkCommand &command);

  uint16_t intervalS() const { return interval_s_; }
  bool demoMode() const { return demo_; }

 private:
  bool slotDue(uint32_t now_ms) const;
  bool claimUplinkSlot();
  Reading measure();
  void sendReadings();
  void requestDownlink();

  Akeru &modem_;
  int analog_pin_;
  bool demo_;
  uint16_t interval_s_;
  bool has_uplinked_;
  uint32_t last_uplink_ms_;
  uint32_t slot_count_;
  bool last_send_failed_;
  bool boot_;
};

#endif  // SENSOR_LOGIC_H
