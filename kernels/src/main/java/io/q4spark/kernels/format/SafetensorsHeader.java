package io.q4spark.kernels.format;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonLocation;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.core.StreamReadFeature;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.json.JsonMapper;
import java.io.ByteArrayInputStream;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.Reader;
import java.nio.ByteBuffer;
import java.nio.CharBuffer;
import java.nio.charset.CharsetDecoder;
import java.nio.charset.CoderResult;
import java.nio.charset.CodingErrorAction;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Parses and validates the JSON header of a safetensors file. Validation is complete: once {@link
 * #parse} returns, every tensor has a known dtype, a shape whose byte size matches its offsets, and
 * the tensors tile the data buffer exactly, so readers never need to check again.
 *
 * <pre>
 * file   = u64 LE header length N | N bytes UTF-8 JSON (object, space padded) | data buffer
 * header = { "__metadata__": {string: string}?,
 *            name: {"dtype": D, "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ... }
 * tensor bytes = data buffer [begin, end), end - begin = d0 * d1 * ... * byteSize(D)
 * </pre>
 */
final class SafetensorsHeader {
  static final String METADATA_KEY = "__metadata__";
  static final String DTYPE = "dtype";
  static final String SHAPE = "shape";
  static final String DATA_OFFSETS = "data_offsets";
  private static final Set<String> TENSOR_FIELDS = Set.of(DTYPE, SHAPE, DATA_OFFSETS);
  private static final List<String> TENSOR_FIELD_ORDER = List.of(DTYPE, SHAPE, DATA_OFFSETS);

  /**
   * Deepest JSON nesting accepted. A valid header needs 3 levels (root, tensor, shape); the limit
   * only exists so a hostile header cannot make the parser recurse deeply, and is generous for
   * tools that put structure into metadata of other JSON files parsed here (the checkpoint index).
   */
  private static final int MAX_JSON_DEPTH = 64;

  /**
   * Longest JSON excerpt quoted in a message, so a fuzzed megabyte value does not flood the log.
   */
  private static final int MAX_QUOTED_CHARS = 80;

  /** Scratch size for the UTF-8 check; any size works, this one keeps the scratch in cache. */
  private static final int UTF8_CHECK_CHUNK_CHARS = 8192;

  /**
   * One mapper for every strict read: duplicate keys are errors (the format forbids them and the
   * reference reader rejects them), anything after the top-level value except whitespace is an
   * error, and strings may be as long as the header itself (Jackson's default cap is lower than
   * ours).
   */
  static final JsonMapper STRICT_JSON =
      JsonMapper.builder(
              JsonFactory.builder()
                  .enable(StreamReadFeature.STRICT_DUPLICATE_DETECTION)
                  .streamReadConstraints(
                      StreamReadConstraints.builder()
                          .maxNestingDepth(MAX_JSON_DEPTH)
                          .maxStringLength((int) SafetensorsFile.MAX_HEADER_BYTES)
                          .maxNameLength((int) SafetensorsFile.MAX_HEADER_BYTES)
                          .build())
                  .build())
          .enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS)
          .build();

  /** A validated tensor entry; offsets are relative to the start of the data buffer. */
  record Entry(
      String name, SafetensorsDType dtype, long[] shape, long numel, long begin, long end) {}

  /** Tensors in header order, and the metadata (empty if absent). */
  record Parsed(List<Entry> tensors, Map<String, String> metadata) {}

  private SafetensorsHeader() {}

  /**
   * Validates a header.
   *
   * @param source the file, for messages
   * @param utf8 the header bytes (length N), padding included
   * @param dataBytes size of the data buffer that follows the header
   */
  static Parsed parse(String source, byte[] utf8, long dataBytes) {
    JsonNode root = parseJson(source, "header", utf8);
    if (!root.isObject()) {
      throw new SafetensorsException(
          source + ": header must be a JSON object, but found " + found(root));
    }
    List<Entry> tensors = new ArrayList<>();
    Map<String, String> metadata = Map.of();
    for (Map.Entry<String, JsonNode> property : root.properties()) {
      if (property.getKey().equals(METADATA_KEY)) {
        metadata = parseMetadata(source, property.getValue());
      } else {
        tensors.add(parseTensor(source, property.getKey(), property.getValue(), dataBytes));
      }
    }
    checkTiling(source, tensors, dataBytes);
    return new Parsed(Collections.unmodifiableList(tensors), metadata);
  }

  /**
   * Checks the bytes are strict UTF-8 (malformed bytes are an error, not replaced) and parses one
   * JSON value. Decoding streams, so memory stays within the bytes plus the parsed tree.
   *
   * @param what what the bytes are, for messages: {@code header}, {@code index}
   */
  static JsonNode parseJson(String source, String what, byte[] utf8) {
    checkUtf8(source, what, utf8);
    JsonNode root;
    // A Reader rather than the bytes: given bytes, Jackson guesses UTF-16 or UTF-32 from zero bytes
    // at the start, but the format says UTF-8.
    try (Reader reader =
        new InputStreamReader(new ByteArrayInputStream(utf8), strictUtf8Decoder())) {
      root = STRICT_JSON.readTree(reader);
    } catch (JacksonException e) {
      JsonLocation at = e.getLocation();
      String position =
          at == null ? "" : " (line " + at.getLineNr() + ", column " + at.getColumnNr() + ")";
      throw new SafetensorsException(
          source + ": " + what + " is not valid JSON: " + e.getOriginalMessage() + position, e);
    } catch (IOException e) {
      throw new SafetensorsException(source + ": cannot parse the " + what + ": " + e, e);
    }
    if (root == null || root.isMissingNode()) {
      throw new SafetensorsException(
          source
              + ": "
              + what
              + " is empty ("
              + utf8.length
              + " bytes of whitespace), expected a JSON object");
    }
    return root;
  }

  private static CharsetDecoder strictUtf8Decoder() {
    return StandardCharsets.UTF_8
        .newDecoder()
        .onMalformedInput(CodingErrorAction.REPORT)
        .onUnmappableCharacter(CodingErrorAction.REPORT);
  }

  /** Decodes into a small scratch buffer, only to find the offset of the first malformed byte. */
  private static void checkUtf8(String source, String what, byte[] utf8) {
    CharsetDecoder decoder = strictUtf8Decoder();
    ByteBuffer in = ByteBuffer.wrap(utf8);
    CharBuffer scratch = CharBuffer.allocate(UTF8_CHECK_CHUNK_CHARS);
    CoderResult result;
    do {
      scratch.clear();
      result = decoder.decode(in, scratch, true);
    } while (result.isOverflow());
    if (!result.isError()) {
      do {
        scratch.clear();
        result = decoder.flush(scratch);
      } while (result.isOverflow());
    }
    if (result.isError()) {
      int offset = in.position();
      throw new SafetensorsException(
          String.format(
              "%s: %s is not valid UTF-8: malformed byte 0x%02X at %s offset %d",
              source, what, utf8[offset] & 0xFF, what, offset));
    }
  }

  private static Map<String, String> parseMetadata(String source, JsonNode node) {
    String rule = source + ": " + METADATA_KEY + " must be an object of string values";
    if (!node.isObject()) {
      throw new SafetensorsException(rule + ", but found " + found(node));
    }
    Map<String, String> metadata = new LinkedHashMap<>();
    for (Map.Entry<String, JsonNode> property : node.properties()) {
      JsonNode value = property.getValue();
      if (!value.isTextual()) {
        throw new SafetensorsException(
            rule + ", but key '" + property.getKey() + "' holds " + found(value));
      }
      metadata.put(property.getKey(), value.textValue());
    }
    return Collections.unmodifiableMap(metadata);
  }

  private static Entry parseTensor(String source, String name, JsonNode node, long dataBytes) {
    String where = "tensor '" + name + "' in " + source;
    if (!node.isObject()) {
      throw new SafetensorsException(
          where
              + ": entry must be an object with fields "
              + TENSOR_FIELD_ORDER
              + ", but found "
              + found(node));
    }
    for (Map.Entry<String, JsonNode> property : node.properties()) {
      String field = property.getKey();
      if (!TENSOR_FIELDS.contains(field)) {
        throw new SafetensorsException(
            where + ": unexpected field '" + field + "'; expected exactly " + TENSOR_FIELD_ORDER);
      }
    }
    for (String field : TENSOR_FIELD_ORDER) {
      if (!node.has(field)) {
        throw new SafetensorsException(
            where + ": missing field '" + field + "'; expected exactly " + TENSOR_FIELD_ORDER);
      }
    }

    JsonNode dtypeNode = node.get(DTYPE);
    if (!dtypeNode.isTextual()) {
      throw new SafetensorsException(
          where + ": dtype must be a string, but found " + found(dtypeNode));
    }
    SafetensorsDType dtype = SafetensorsDType.parse(dtypeNode.textValue(), where);

    JsonNode shapeNode = node.get(SHAPE);
    String shapeRule = where + ": shape must be an array of non-negative integers";
    if (!shapeNode.isArray()) {
      throw new SafetensorsException(shapeRule + ", but found " + found(shapeNode));
    }
    long[] shape = new long[shapeNode.size()];
    for (int i = 0; i < shape.length; i++) {
      shape[i] = index(shapeNode.get(i), shapeRule + ", but element " + i);
    }
    long numel = 1;
    long needed;
    try {
      for (long d : shape) {
        numel = Math.multiplyExact(numel, d);
      }
      needed = Math.multiplyExact(numel, dtype.byteSize());
    } catch (ArithmeticException e) {
      throw new SafetensorsException(
          where
              + ": shape "
              + Arrays.toString(shape)
              + " of dtype "
              + dtype
              + " needs more than "
              + Long.MAX_VALUE
              + " bytes",
          e);
    }

    JsonNode offsetsNode = node.get(DATA_OFFSETS);
    String offsetsRule = where + ": data_offsets must be two non-negative integers [begin, end]";
    if (!offsetsNode.isArray() || offsetsNode.size() != 2) {
      throw new SafetensorsException(offsetsRule + ", but found " + found(offsetsNode));
    }
    long begin = index(offsetsNode.get(0), offsetsRule + ", but begin");
    long end = index(offsetsNode.get(1), offsetsRule + ", but end");
    String offsets = "[" + begin + ", " + end + "]";
    if (begin > end) {
      throw new SafetensorsException(
          where + ": data_offsets " + offsets + " have begin > end; expected begin <= end");
    }
    if (end - begin != needed) {
      throw new SafetensorsException(
          where
              + ": data_offsets "
              + offsets
              + " hold "
              + (end - begin)
              + " bytes, but dtype "
              + dtype
              + " and shape "
              + Arrays.toString(shape)
              + " need "
              + needed);
    }
    if (end > dataBytes) {
      throw new SafetensorsException(
          where
              + ": data_offsets "
              + offsets
              + " end beyond the data buffer, which holds "
              + dataBytes
              + " bytes");
    }
    return new Entry(name, dtype, shape, numel, begin, end);
  }

  /**
   * The tensors, sorted by offset, must cover the data buffer from 0 to its end with no overlap and
   * no hole, as the reference implementation requires: bytes that belong to no tensor are either
   * corruption or data a reader would silently lose.
   */
  private static void checkTiling(String source, List<Entry> tensors, long dataBytes) {
    List<Entry> sorted = new ArrayList<>(tensors);
    sorted.sort(Comparator.comparingLong(Entry::begin).thenComparingLong(Entry::end));
    long cursor = 0;
    Entry previous = null;
    for (Entry e : sorted) {
      if (e.begin() < cursor) {
        throw new SafetensorsException(
            source
                + ": tensor '"
                + e.name()
                + "' at data_offsets "
                + range(e)
                + " begins inside tensor '"
                + previous.name()
                + "' at "
                + range(previous)
                + "; tensors must not overlap");
      }
      if (e.begin() > cursor) {
        String between =
            previous == null
                ? "before tensor '" + e.name() + "' beginning at " + e.begin()
                : "between tensor '"
                    + previous.name()
                    + "' ending at "
                    + cursor
                    + " and tensor '"
                    + e.name()
                    + "' beginning at "
                    + e.begin();
        throw new SafetensorsException(
            source
                + ": data buffer bytes ["
                + cursor
                + ", "
                + e.begin()
                + ") belong to no tensor ("
                + between
                + "); tensors must tile the data buffer with no holes");
      }
      cursor = e.end();
      previous = e;
    }
    if (cursor != dataBytes) {
      throw new SafetensorsException(
          source
              + ": data buffer holds "
              + dataBytes
              + " bytes, but the tensors end at "
              + cursor
              + ": "
              + (dataBytes - cursor)
              + " trailing bytes belong to no tensor");
    }
  }

  private static String range(Entry e) {
    return "[" + e.begin() + ", " + e.end() + "]";
  }

  /**
   * A non-negative integer that fits in a long, or an error whose message starts with {@code what}.
   */
  private static long index(JsonNode node, String what) {
    String problem;
    if (node.isIntegralNumber() && node.canConvertToLong()) {
      long value = node.longValue();
      if (value >= 0) {
        return value;
      }
      problem = "is negative";
    } else if (node.isIntegralNumber()) {
      problem = "does not fit in a long";
    } else if (node.isNumber()) {
      problem = "is not an integer";
    } else {
      problem = "is " + kind(node);
    }
    throw new SafetensorsException(what + " " + quote(node) + " " + problem);
  }

  /**
   * The node for a message: its kind and its (shortened) JSON text, e.g. {@code a string "F99"}.
   */
  static String found(JsonNode node) {
    return node.isNull() ? "null" : kind(node) + " " + quote(node);
  }

  static String kind(JsonNode node) {
    return switch (node.getNodeType()) {
      case ARRAY -> "an array";
      case OBJECT, POJO -> "an object";
      case STRING -> "a string";
      case NUMBER -> "a number";
      case BOOLEAN -> "a boolean";
      case NULL -> "null";
      case BINARY -> "binary data";
      case MISSING -> "nothing";
    };
  }

  static String quote(JsonNode node) {
    String text = node.toString();
    return text.length() <= MAX_QUOTED_CHARS
        ? text
        : text.substring(0, MAX_QUOTED_CHARS) + "... (" + text.length() + " chars)";
  }
}
