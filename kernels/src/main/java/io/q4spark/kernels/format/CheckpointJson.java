package io.q4spark.kernels.format;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;

/**
 * Reads and writes the JSON side files of checkpoints ({@code config.json}, {@code
 * quantize_config.json}) and reads typed fields with messages that name the file and the field.
 */
final class CheckpointJson {
  private static final ObjectMapper MAPPER =
      new ObjectMapper()
          .enable(JsonParser.Feature.STRICT_DUPLICATE_DETECTION)
          .enable(SerializationFeature.INDENT_OUTPUT);

  private CheckpointJson() {}

  static ObjectNode newObject() {
    return MAPPER.createObjectNode();
  }

  static JsonNode read(Path file) {
    if (!Files.isRegularFile(file)) {
      throw new CheckpointException(
          "missing " + file.getFileName() + ": expected the file " + file);
    }
    try {
      JsonNode node = MAPPER.readTree(file.toFile());
      if (node == null || !node.isObject()) {
        throw new CheckpointException(file + " must hold a JSON object");
      }
      return node;
    } catch (IOException e) {
      throw new CheckpointException(file + " is not valid JSON: " + e.getMessage(), e);
    }
  }

  static void write(Path file, JsonNode node) {
    try {
      MAPPER.writeValue(file.toFile(), node);
    } catch (IOException e) {
      throw new CheckpointException("cannot write " + file + ": " + e.getMessage(), e);
    }
  }

  /** An integer field; {@code null} JSON or a missing field gives {@code absent}. */
  static int integer(JsonNode parent, String field, Integer absent, String where) {
    JsonNode v = parent.get(field);
    if (v == null || v.isNull()) {
      if (absent == null) {
        throw new CheckpointException(
            where + ": field '" + field + "' is missing, expected an integer");
      }
      return absent;
    }
    if (!v.isIntegralNumber() || !v.canConvertToInt()) {
      throw new CheckpointException(
          where + ": field '" + field + "' should be an integer, but was " + v);
    }
    return v.intValue();
  }

  static boolean bool(JsonNode parent, String field, Boolean absent, String where) {
    JsonNode v = parent.get(field);
    if (v == null || v.isNull()) {
      if (absent == null) {
        throw new CheckpointException(
            where + ": field '" + field + "' is missing, expected true or false");
      }
      return absent;
    }
    if (!v.isBoolean()) {
      throw new CheckpointException(
          where + ": field '" + field + "' should be true or false, but was " + v);
    }
    return v.booleanValue();
  }

  /** A string field, or {@code absent} when missing or null. */
  static String text(JsonNode parent, String field, String absent, String where) {
    JsonNode v = parent.get(field);
    if (v == null || v.isNull()) {
      return absent;
    }
    if (!v.isTextual()) {
      throw new CheckpointException(
          where + ": field '" + field + "' should be a string, but was " + v);
    }
    return v.textValue();
  }
}
