package io.q4spark.spark.model;

import io.q4spark.kernels.DType;
import io.q4spark.kernels.LinearLayerConfig;
import io.q4spark.kernels.QuantScheme;
import io.q4spark.kernels.QuantizedLinear;
import io.q4spark.kernels.ScalarType;
import io.q4spark.kernels.repack.Int4Layout;
import io.q4spark.kernels.repack.PackedInt4Matrix;
import java.util.ArrayList;
import java.util.List;

/**
 * A model's layers as bytes, for the broadcast: the packed int4 words, scales, zero points, g_idx
 * and bias of each layer exactly as read (the kernels repack once per executor, for the kernel that
 * executor selects), with the configuration and activation.
 *
 * <pre>
 *   "Q4M" VERSION layerCount
 *   per layer: name fullK fullN k n weightType actType groupSize zeroPoints hasGIdx scheme
 *              activation
 *              weight: layout rows cols words[]
 *              scales[]
 *              hasZeros [zeros: layout rows cols words[]]
 *              hasGIdx  [gIdx[]]
 *              hasBias  [bias[]]
 *   strings are length-prefixed UTF-8, arrays length-prefixed, all little-endian
 * </pre>
 */
public final class ModelCodec {
  private static final String MAGIC = "Q4M";
  private static final int VERSION = 1;

  /**
   * Largest chunk: 64 MiB keeps each array far below Java's 2 GiB limit and each broadcast piece's
   * deserialisation small, while a 7B model still needs only about 60 chunks.
   */
  public static final int DEFAULT_CHUNK_BYTES = 64 << 20;

  private ModelCodec() {}

  public static ChunkedBytes encode(List<ModelLayer> layers, int chunkBytes) {
    ChunkedBytes.Writer w = new ChunkedBytes.Writer(chunkBytes);
    w.writeString(MAGIC).writeInt(VERSION).writeInt(layers.size());
    for (ModelLayer layer : layers) {
      QuantizedLinear l = layer.linear();
      LinearLayerConfig c = l.config();
      w.writeString(c.layer())
          .writeInt(c.fullK())
          .writeInt(c.fullN())
          .writeInt(c.k())
          .writeInt(c.n())
          .writeString(c.weightType().name())
          .writeString(c.actType().name())
          .writeInt(c.groupSize())
          .writeBoolean(c.zeroPoints())
          .writeBoolean(c.hasGIdx())
          .writeString(c.scheme().name())
          .writeString(layer.activation().name());
      writeMatrix(w, l.weight());
      w.writeFloats(l.scales());
      w.writeBoolean(l.zeros() != null);
      if (l.zeros() != null) {
        writeMatrix(w, l.zeros());
      }
      w.writeBoolean(l.gIdx() != null);
      if (l.gIdx() != null) {
        w.writeInts(l.gIdx());
      }
      w.writeBoolean(l.bias() != null);
      if (l.bias() != null) {
        w.writeFloats(l.bias());
      }
    }
    return w.finish();
  }

  public static List<ModelLayer> decode(ChunkedBytes bytes) {
    ChunkedBytes.Reader r = bytes.reader();
    String magic = r.readString();
    int version = r.readInt();
    if (!MAGIC.equals(magic) || version != VERSION) {
      throw new IllegalStateException(
          "model bytes start with "
              + magic
              + " version "
              + version
              + ", expected "
              + MAGIC
              + " version "
              + VERSION);
    }
    int count = r.readInt();
    List<ModelLayer> layers = new ArrayList<>(count);
    for (int i = 0; i < count; i++) {
      LinearLayerConfig c =
          new LinearLayerConfig(
              r.readString(),
              r.readInt(),
              r.readInt(),
              r.readInt(),
              r.readInt(),
              ScalarType.parse(r.readString()),
              DType.valueOf(r.readString()),
              r.readInt(),
              r.readBoolean(),
              r.readBoolean(),
              QuantScheme.valueOf(r.readString()));
      Activation activation = Activation.valueOf(r.readString());
      PackedInt4Matrix weight = readMatrix(r);
      float[] scales = r.readFloats();
      PackedInt4Matrix zeros = r.readBoolean() ? readMatrix(r) : null;
      int[] gIdx = r.readBoolean() ? r.readInts() : null;
      float[] bias = r.readBoolean() ? r.readFloats() : null;
      layers.add(
          new ModelLayer(new QuantizedLinear(c, weight, scales, zeros, gIdx, bias), activation));
    }
    return layers;
  }

  private static void writeMatrix(ChunkedBytes.Writer w, PackedInt4Matrix m) {
    w.writeString(m.layout().name()).writeInt(m.rows()).writeInt(m.cols()).writeInts(m.words());
  }

  private static PackedInt4Matrix readMatrix(ChunkedBytes.Reader r) {
    Int4Layout layout = Int4Layout.valueOf(r.readString());
    int rows = r.readInt();
    int cols = r.readInt();
    return new PackedInt4Matrix(layout, rows, cols, r.readInts());
  }
}
