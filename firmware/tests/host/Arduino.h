// Host stand-in for the parts of the Arduino core the sketch uses. The clock,
// analog pins and random() are driven by the test through host::.

#ifndef HOST_ARDUINO_H
#define HOST_ARDUINO_H

#include <stddef.h>
#include <stdint.h>

#include <string>

typedef uint8_t byte;

#define DEC 10
#define HEX 16

const uint8_t A0 = 14;
const uint8_t A1 = 15;
const uint8_t A2 = 16;
const uint8_t A3 = 17;
const uint8_t A4 = 18;
const uint8_t A5 = 19;

// On the AVR, F() keeps a literal in flash; here it is only a type tag.
class __FlashStringHelper;
#define F(literal) (reinterpret_cast<const __FlashStringHelper *>(literal))

class String {
 public:
  String() {}
  String(const char *text) : text_(text ? text : "") {}
  String(const __FlashStringHelper *text)
      : text_(reinterpret_cast<const char *>(text)) {}
  explicit String(char c) : text_(1, c) {}
  explicit String(unsigned char value, unsigned char base = DEC);
  explicit String(int value, unsigned char base = DEC);
  explicit String(unsigned int value, unsigned char base = DEC);
  explicit String(long value, unsigned char base = DEC);
  explicit String(unsigned long value, unsigned char base = DEC);

  unsigned int length() const { return text_.size(); }
  const char *c_str() const { return text_.c_str(); }
  char charAt(unsigned int index) const {
    return index < text_.size() ? text_[index] : '\0';
  }
  char operator[](unsigned int index) const { return charAt(index); }

  bool concat(const String &other) { text_ += other.text_; return true; }
  bool concat(const char *text) { text_ += text; return true; }
  bool concat(char c) { text_ += c; return true; }
  String &operator+=(const String &other) { concat(other); return *this; }
  String &operator+=(const char *text) { concat(text); return *this; }
  String &operator+=(char c) { concat(c); return *this; }

  bool equals(const String &other) const { return text_ == other.text_; }
  bool operator==(const String &other) const { return equals(other); }
  bool operator==(const char *text) const { return text_ == text; }
  bool operator!=(const String &other) const { return !equals(other); }

  int indexOf(const String &needle, unsigned int from = 0) const;
  String substring(unsigned int from) const;
  String substring(unsigned int from, unsigned int to) const;
  void replace(const String &find, const String &with);
  long toInt() const;
  float toFloat() const;

 private:
  std::string text_;
};

String operator+(const String &left, const String &right);

class Print {
 public:
  virtual ~Print() {}
  virtual size_t write(uint8_t c) = 0;
  size_t write(const char *text);

  size_t print(const __FlashStringHelper *text);
  size_t print(const String &text);
  size_t print(const char text[]);
  size_t print(char c);
  size_t print(unsigned char value, int base = DEC);
  size_t print(int value, int base = DEC);
  size_t print(unsigned int value, int base = DEC);
  size_t print(long value, int base = DEC);
  size_t print(unsigned long value, int base = DEC);
  size_t print(double value, int digits = 2);

  size_t println();
  size_t println(const __FlashStringHelper *text);
  size_t println(const String &text);
  size_t println(const char text[]);
  size_t println(char c);
  size_t println(unsigned char value, int base = DEC);
  size_t println(int value, int base = DEC);
  size_t println(unsigned int value, int base = DEC);
  size_t println(long value, int base = DEC);
  size_t println(unsigned long value, int base = DEC);
  size_t println(double value, int digits = 2);
};

// Serial: whatever the sketch prints lands in host::serial.
class HardwareSerial : public Print {
 public:
  void begin(unsigned long baud) { (void)baud; }
  size_t write(uint8_t c) override;
  using Print::write;
  operator bool() const { return true; }
};

extern HardwareSerial Serial;

unsigned long millis();
void delay(unsigned long ms);
int analogRead(uint8_t pin);
long random(long max);
long random(long min, long max);
void randomSeed(unsigned long seed);

namespace host {

// The test's clock in ms. It never wraps; millis() returns its low 32 bits,
// as the AVR's does, so a test can start it just below 2^32.
extern uint64_t clock_ms;
extern std::string serial;
extern int analog_values[A5 + 1];
// random(max) returns random_value % max.
extern long random_value;

void reset(uint64_t start_ms);

}  // namespace host

#endif  // HOST_ARDUINO_H
