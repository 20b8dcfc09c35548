#include "Arduino.h"

#include <stdio.h>
#include <stdlib.h>

#include <utility>

namespace {

std::string formatNumber(unsigned long long value, bool negative, unsigned char base) {
  if (base < 2 || base > 16) base = DEC;
  std::string digits;
  do {
    digits.insert(digits.begin(), "0123456789abcdef"[value % base]);
    value /= base;
  } while (value != 0);
  if (negative) digits.insert(digits.begin(), '-');
  return digits;
}

std::string formatSigned(long long value, unsigned char base) {
  // Like the core: only base 10 prints a minus sign.
  if (base == DEC && value < 0) return formatNumber(0ULL - (unsigned long long)value, true, base);
  return formatNumber((unsigned long long)value, false, base);
}

}  // namespace

String::String(unsigned char value, unsigned char base) : text_(formatNumber(value, false, base)) {}
String::String(int value, unsigned char base) : text_(formatSigned(value, base)) {}
String::String(unsigned int value, unsigned char base) : text_(formatNumber(value, false, base)) {}
String::String(long value, unsigned char base) : text_(formatSigned(value, base)) {}
String::String(unsigned long value, unsigned char base) : text_(formatNumber(value, false, base)) {}

int String::indexOf(const String &needle, unsigned int from) const {
  const std::string::size_type at = text_.find(needle.text_, from);
  return at == std::string::npos ? -1 : (int)at;
}

String String::substring(unsigned int from) const { return substring(from, length()); }

String String::substring(unsigned int from, unsigned int to) const {
  if (from > to) std::swap(from, to);
  if (from >= text_.size()) return String();
  if (to > text_.size()) to = text_.size();
  return String(text_.substr(from, to - from).c_str());
}

void String::replace(const String &find, const String &with) {
  if (find.text_.empty()) return;
  std::string::size_type at = 0;
  while ((at = text_.find(find.text_, at)) != std::string::npos) {
    text_.replace(at, find.text_.size(), with.text_);
    at += with.text_.size();
  }
}

long String::toInt() const { return strtol(text_.c_str(), NULL, 10); }
float String::toFloat() const { return strtof(text_.c_str(), NULL); }

String operator+(const String &left, const String &right) {
  String joined(left);
  joined.concat(right);
  return joined;
}

size_t Print::write(const char *text) {
  size_t count = 0;
  while (*text) count += write((uint8_t)*text++);
  return count;
}

size_t Print::print(const __FlashStringHelper *text) { return write(reinterpret_cast<const char *>(text)); }
size_t Print::print(const String &text) { return write(text.c_str()); }
size_t Print::print(const char text[]) { return write(text); }
size_t Print::print(char c) { return write((uint8_t)c); }
size_t Print::print(unsigned char value, int base) { return print(String(value, base)); }
size_t Print::print(int value, int base) { return print(String(value, base)); }
size_t Print::print(unsigned int value, int base) { return print(String(value, base)); }
size_t Print::print(long value, int base) { return print(String(value, base)); }
size_t Print::print(unsigned long value, int base) { return print(String(value, base)); }

size_t Print::print(double value, int digits) {
  char text[64];
  snprintf(text, sizeof text, "%.*f", digits, value);
  return write(text);
}

size_t Print::println() { return write("\r\n"); }
size_t Print::println(const __FlashStringHelper *text) { return print(text) + println(); }
size_t Print::println(const String &text) { return print(text) + println(); }
size_t Print::println(const char text[]) { return print(text) + println(); }
size_t Print::println(char c) { return print(c) + println(); }
size_t Print::println(unsigned char value, int base) { return print(value, base) + println(); }
size_t Print::println(int value, int base) { return print(value, base) + println(); }
size_t Print::println(unsigned int value, int base) { return print(value, base) + println(); }
size_t Print::println(long value, int base) { return print(value, base) + println(); }
size_t Print::println(unsigned long value, int base) { return print(value, base) + println(); }
size_t Print::println(double value, int digits) { return print(value, digits) + println(); }

size_t HardwareSerial::write(uint8_t c) {
  host::serial += (char)c;
  return 1;
}

HardwareSerial Serial;

namespace host {

uint64_t clock_ms = 0;
std::string serial;
int analog_values[A5 + 1];
long random_value = 0;

void reset(uint64_t start_ms) {
  clock_ms = start_ms;
  serial.clear();
  for (int &value : analog_values) value = 0;
  random_value = 0;
}

}  // namespace host

unsigned long millis() { return (uint32_t)host::clock_ms; }

void delay(unsigned long ms) { host::clock_ms += ms; }

int analogRead(uint8_t pin) { return pin <= A5 ? host::analog_values[pin] : 0; }

long random(long max) { return max > 0 ? host::random_value % max : 0; }

long random(long min, long max) { return max > min ? min + random(max - min) : min; }

void randomSeed(unsigned long seed) { (void)seed; }
