// Stand-in for the Snootlab Akeru library, for build checks only
// (firmware/build-uno.sh): the same public API as the real library, a
// minimal AT-command implementation behind it. To flash a board, install
// the real library (github.com/Snootlab/Akeru) instead; see firmware/README.md.

#ifndef AKERU_H
#define AKERU_H

#include <Arduino.h>
#include <SoftwareSerial.h>

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

 private:
  bool command(const String &at, unsigned long timeout_ms, String *reply);
  bool readLine(String *line, unsigned long timeout_ms);
  static String hexOf(const void *bytes, int count);

  SoftwareSerial port_;
  unsigned long last_send_ms_;
  bool has_sent_;
  bool echo_;
};

#endif  // AKERU_H
