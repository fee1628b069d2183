package io.q4spark.spark.conf;

import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;

/** How the output column holds a row's N values: {@code spark.q4.output.format}. */
public enum OutputFormat {
  /** {@code array<float>}. */
  FLOAT,
  /** {@code binary}: N IEEE half-precision values, 2 bytes each, little-endian. */
  FP16;

  /** The output column's Spark type. */
  public DataType sparkType() {
    return this == FP16
        ? DataTypes.BinaryType
        : DataTypes.createArrayType(DataTypes.FloatType, false);
  }

  public String configName() {
    return name().toLowerCase(Locale.ROOT);
  }

  public static List<String> configNames() {
    return Arrays.stream(values()).map(OutputFormat::configName).toList();
  }

  public static OutputFormat parse(String text) {
    return valueOf(text.trim().toUpperCase(Locale.ROOT));
  }
}
