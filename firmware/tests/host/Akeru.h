// Host fake of the Snootlab Akeru library: the public API has the real
// library's signatures (firmware/tests/avr-libs/Akeru/Akeru.h has the same
// list, a host test compares them); below it, controls for the test.

#ifndef HOST_AKERU_H
#define HOST_AKERU_H

#include <Arduino.h>
#include <SoftwareSerial.h>

#include <deque>
#include <set>
#include <string>
#include <vector>

class Akeru {
 public:
  Akeru(unsigned int rx, unsigned int tx);
  void echoOn();
  void echoOff();
  bool begin();
  bool isReady();
  bool sendAT();
  bool sendPayload(const String payload);
  bool getTemperature(int *temperature);
  bool getID(String *id);
  bool getVoltage(float *voltage);
  bool getHardware(String *hardware);
  bool getFirmware(String *firmware);
  bool getPower(int *power);
  bool setPower(int power);
  bool receive(String *data);
  String toHex(int i);
  String toHex(unsigned int i);
  String toHex(long l);
  String toHex(unsigned long ul);
  String toHex(float f);
  String toHex(double d);
  String toHex(char c);
  String toHex(char *c, int length);
  String toHex(int8_t i);
  String toHex(uint8_t ui);

  // ---- test controls, not part of the library ----

  // How long the calls block, as on the board (the clock moves on meanwhile).
  static const uint32_t BEGIN_MS = 2000;
  static const uint32_t AT_COMMAND_MS = 300;
  static const uint32_t SEND_MS = 6000;
  static const uint32_t RECEIVE_MS = 40000;
  // The library's own guard: no send within 10 minutes of the last success.
  static const uint32_t LIBRARY_GAP_MS = 600000;

  struct Uplink {
    uint64_t at_ms;         // host::clock_ms when the call started
    bool downlink_request;  // receive() rather than sendPayload()
    std::string hex;        // the payload sent, or the downlink answered
    bool ok;
  };
  std::vector<Uplink> uplinks;

  bool modem_answers;
  int temperature_c;
  bool temperature_ok;
  float voltage_v;
  bool voltage_ok;
  std::set<size_t> failing_sends;     // 0-based sendPayload() calls that fail
  std::deque<std::string> downlinks;  // answers to receive(); "" = none

 private:
  bool atCommand();
  static String hexOf(const void *bytes, size_t count);

  bool has_sent_;
  uint32_t last_send_ms_;
  size_t send_calls_;
};

#endif  // HOST_AKERU_H
