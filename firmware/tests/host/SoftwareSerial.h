// Host stand-in for SoftwareSerial: the fake Akeru never talks to a port, but
// the real Akeru.h includes this header, so the sketch may expect it.

#ifndef HOST_SOFTWARE_SERIAL_H
#define HOST_SOFTWARE_SERIAL_H

#include "Arduino.h"

class SoftwareSerial : public Print {
 public:
  SoftwareSerial(uint8_t rx, uint8_t tx, bool inverse_logic = false) {
    (void)rx;
    (void)tx;
    (void)inverse_logic;
  }
  void begin(long baud) { (void)baud; }
  void end() {}
  bool listen() { return true; }
  int available() { return 0; }
  int read() { return -1; }
  void flush() {}
  size_t write(uint8_t c) override { (void)c; return 1; }
  using Print::write;
};

#endif  // HOST_SOFTWARE_SERIAL_H
