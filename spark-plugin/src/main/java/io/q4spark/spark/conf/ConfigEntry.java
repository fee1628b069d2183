package io.q4spark.spark.conf;

import java.util.Map;
import java.util.function.Function;
import java.util.function.Predicate;

/**
 * One {@code spark.q4.*} configuration key, declared once: key, type (through its parser), default,
 * doc and validator. Invalid values fail with the one message template {@code The value of <key>
 * should be <rule>, but was <value>}.
 *
 * @param key the full key, {@code spark.q4.<area>.<name>}
 * @param defaultValue the default as text, or null when unset by default
 * @param doc one sentence for the generated configuration table
 * @param rule what a valid value is, in words, for the error message
 * @param parser text to value
 * @param validator accepts valid parsed values
 */
public record ConfigEntry<T>(
    String key,
    String defaultValue,
    String doc,
    String rule,
    Function<String, T> parser,
    Predicate<T> validator) {

  /** The value in {@code conf}, or the default (null when there is none). */
  public T get(Map<String, String> conf) {
    String text = conf.getOrDefault(key, defaultValue);
    if (text == null) {
      return null;
    }
    T value;
    try {
      value = parser.apply(text.trim());
    } catch (RuntimeException e) {
      throw invalid(text);
    }
    if (!validator.test(value)) {
      throw invalid(text);
    }
    return value;
  }

  private IllegalArgumentException invalid(String text) {
    return new IllegalArgumentException(
        "The value of " + key + " should be " + rule + ", but was " + text);
  }
}
