package io.q4spark.jobs.bench;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Writes the one-node ONNX models the benchmark runs on ONNX Runtime, as protocol buffers: a {@code
 * com.microsoft.MatMulNBits} layer with 4-bit symmetric weights, and a plain fp32 {@code MatMul}.
 * Input {@code A} is float [M, K] with a symbolic first dimension, so one session serves every M;
 * output {@code Y} is float [M, N].
 *
 * <p>Field numbers are those of {@code onnx/onnx.proto} (checked against the file):
 *
 * <pre>
 *   ModelProto         ir_version=1 producer_name=2 graph=7 opset_import=8
 *   OperatorSetIdProto domain=1 version=2
 *   GraphProto         node=1 name=2 initializer=5 input=11 output=12
 *   NodeProto          input=1 output=2 name=3 op_type=4 attribute=5 domain=7
 *   AttributeProto     name=1 i=3 type=20 (AttributeType INT = 2)
 *   TensorProto        dims=1 data_type=2 name=8 raw_data=9 (DataType FLOAT = 1, UINT8 = 2)
 *   ValueInfoProto     name=1 type=2
 *   TypeProto          tensor_type=1;  TypeProto.Tensor elem_type=1 shape=2
 *   TensorShapeProto   dim=1;          Dimension dim_value=1 dim_param=2
 * </pre>
 *
 * MatMulNBits' inputs, as ONNX Runtime documents them: {@code B} uint8 [N, K/G, G/2] holding two
 * codes per byte, element k of a block in the low nibble when k is even; {@code scales} float [N,
 * K/G]; no {@code zero_points} input, so every block's zero is 8 (the symmetric uint4b8 encoding).
 * {@code y = a * ((code - 8) * scale)^T}.
 */
final class OnnxModelWriter {
  /** IR version 8 (ONNX 1.10): understood by every ONNX Runtime since 1.10. */
  static final long IR_VERSION = 8;

  /** Default-domain opset: MatMul's current definition is opset 13; 21 is supported by ORT 1.29. */
  static final long ONNX_OPSET = 21;

  /** The com.microsoft contrib domain has one version. */
  static final long MICROSOFT_OPSET = 1;

  static final String INPUT = "A";
  static final String OUTPUT = "Y";

  /** Name of the symbolic first dimension of A and Y. */
  static final String ROWS_DIM = "M";

  // ModelProto
  private static final int MODEL_IR_VERSION = 1;
  private static final int MODEL_PRODUCER_NAME = 2;
  private static final int MODEL_GRAPH = 7;
  private static final int MODEL_OPSET_IMPORT = 8;
  // OperatorSetIdProto
  private static final int OPSET_DOMAIN = 1;
  private static final int OPSET_VERSION = 2;
  // GraphProto
  private static final int GRAPH_NODE = 1;
  private static final int GRAPH_NAME = 2;
  private static final int GRAPH_INITIALIZER = 5;
  private static final int GRAPH_INPUT = 11;
  private static final int GRAPH_OUTPUT = 12;
  // NodeProto
  private static final int NODE_INPUT = 1;
  private static final int NODE_OUTPUT = 2;
  private static final int NODE_NAME = 3;
  private static final int NODE_OP_TYPE = 4;
  private static final int NODE_ATTRIBUTE = 5;
  private static final int NODE_DOMAIN = 7;
  // AttributeProto
  private static final int ATTRIBUTE_NAME = 1;
  private static final int ATTRIBUTE_I = 3;
  private static final int ATTRIBUTE_TYPE = 20;
  private static final int ATTRIBUTE_TYPE_INT = 2;
  // TensorProto
  private static final int TENSOR_DIMS = 1;
  private static final int TENSOR_DATA_TYPE = 2;
  private static final int TENSOR_NAME = 8;
  private static final int TENSOR_RAW_DATA = 9;
  static final int DATA_TYPE_FLOAT = 1;
  static final int DATA_TYPE_UINT8 = 2;
  // ValueInfoProto, TypeProto, TypeProto.Tensor, TensorShapeProto, Dimension
  private static final int VALUE_INFO_NAME = 1;
  private static final int VALUE_INFO_TYPE = 2;
  private static final int TYPE_TENSOR_TYPE = 1;
  private static final int TENSOR_TYPE_ELEM_TYPE = 1;
  private static final int TENSOR_TYPE_SHAPE = 2;
  private static final int SHAPE_DIM = 1;
  private static final int DIM_VALUE = 1;
  private static final int DIM_PARAM = 2;

  private OnnxModelWriter() {}

  /**
   * A {@code com.microsoft.MatMulNBits} model: {@code Y = A * dequant(B)^T}.
   *
   * @param b uint8 [N, K/G, G/2], two codes per byte, low nibble first
   * @param scales float [N, K/G]
   * @param accuracyLevel ONNX Runtime's minimum accuracy of A: 0 unset (fp32 math on this CPU), 4
   *     int8
   */
  static byte[] matMulNBits(
      int k, int n, int blockSize, int accuracyLevel, byte[] b, float[] scales) {
    if (blockSize < 16 || blockSize > 256 || Integer.bitCount(blockSize) != 1) {
      throw new IllegalArgumentException(
          "MatMulNBits block size must be a power of 2 in 16..256, but was " + blockSize);
    }
    if (k % blockSize != 0) {
      throw new IllegalArgumentException(
          "K=" + k + " must be a multiple of the block size " + blockSize);
    }
    int blocks = k / blockSize;
    if (b.length != (long) n * blocks * (blockSize / 2) || scales.length != (long) n * blocks) {
      throw new IllegalArgumentException(
          "MatMulNBits B holds "
              + b.length
              + " bytes and scales "
              + scales.length
              + " values, expected [N, K/G, G/2] = "
              + (long) n * blocks * (blockSize / 2)
              + " and [N, K/G] = "
              + (long) n * blocks
              + " for K="
              + k
              + ", N="
              + n
              + ", G="
              + blockSize);
    }
    ProtoWriter node =
        new ProtoWriter()
            .string(NODE_INPUT, INPUT)
            .string(NODE_INPUT, "B")
            .string(NODE_INPUT, "scales")
            .string(NODE_OUTPUT, OUTPUT)
            .string(NODE_NAME, "matmul_nbits")
            .string(NODE_OP_TYPE, "MatMulNBits")
            .string(NODE_DOMAIN, "com.microsoft")
            .message(NODE_ATTRIBUTE, intAttribute("K", k))
            .message(NODE_ATTRIBUTE, intAttribute("N", n))
            .message(NODE_ATTRIBUTE, intAttribute("bits", 4))
            .message(NODE_ATTRIBUTE, intAttribute("block_size", blockSize))
            .message(NODE_ATTRIBUTE, intAttribute("accuracy_level", accuracyLevel));
    ProtoWriter graph =
        new ProtoWriter()
            .message(GRAPH_NODE, node)
            .string(GRAPH_NAME, "q4spark_matmul_nbits")
            .message(GRAPH_INITIALIZER, tensor("B", DATA_TYPE_UINT8, b, n, blocks, blockSize / 2))
            .message(
                GRAPH_INITIALIZER,
                tensor("scales", DATA_TYPE_FLOAT, littleEndian(scales), n, blocks))
            .message(GRAPH_INPUT, rowsByColumns(INPUT, k))
            .message(GRAPH_OUTPUT, rowsByColumns(OUTPUT, n));
    return model(graph, true);
  }

  /**
   * A default-domain {@code MatMul} model: {@code Y = A * W}.
   *
   * @param weight float [K, N] row-major
   */
  static byte[] matMul(int k, int n, float[] weight) {
    if (weight.length != (long) k * n) {
      throw new IllegalArgumentException(
          "MatMul weight holds " + weight.length + " values, expected K * N = " + (long) k * n);
    }
    ProtoWriter node =
        new ProtoWriter()
            .string(NODE_INPUT, INPUT)
            .string(NODE_INPUT, "W")
            .string(NODE_OUTPUT, OUTPUT)
            .string(NODE_NAME, "matmul")
            .string(NODE_OP_TYPE, "MatMul");
    ProtoWriter graph =
        new ProtoWriter()
            .message(GRAPH_NODE, node)
            .string(GRAPH_NAME, "q4spark_matmul_fp32")
            .message(GRAPH_INITIALIZER, tensor("W", DATA_TYPE_FLOAT, littleEndian(weight), k, n))
            .message(GRAPH_INPUT, rowsByColumns(INPUT, k))
            .message(GRAPH_OUTPUT, rowsByColumns(OUTPUT, n));
    return model(graph, false);
  }

  private static byte[] model(ProtoWriter graph, boolean microsoft) {
    ProtoWriter m =
        new ProtoWriter()
            .varint(MODEL_IR_VERSION, IR_VERSION)
            .string(MODEL_PRODUCER_NAME, "q4spark bench")
            .message(MODEL_GRAPH, graph)
            .message(
                MODEL_OPSET_IMPORT,
                new ProtoWriter().string(OPSET_DOMAIN, "").varint(OPSET_VERSION, ONNX_OPSET));
    if (microsoft) {
      m.message(
          MODEL_OPSET_IMPORT,
          new ProtoWriter()
              .string(OPSET_DOMAIN, "com.microsoft")
              .varint(OPSET_VERSION, MICROSOFT_OPSET));
    }
    return m.toByteArray();
  }

  private static ProtoWriter intAttribute(String name, long value) {
    return new ProtoWriter()
        .string(ATTRIBUTE_NAME, name)
        .varint(ATTRIBUTE_I, value)
        .varint(ATTRIBUTE_TYPE, ATTRIBUTE_TYPE_INT);
  }

  private static ProtoWriter tensor(String name, int dataType, byte[] raw, long... dims) {
    ProtoWriter t = new ProtoWriter();
    for (long d : dims) {
      t.varint(TENSOR_DIMS, d);
    }
    return t.varint(TENSOR_DATA_TYPE, dataType)
        .string(TENSOR_NAME, name)
        .bytes(TENSOR_RAW_DATA, raw);
  }

  /** A float tensor [M, columns] with M symbolic. */
  private static ProtoWriter rowsByColumns(String name, long columns) {
    ProtoWriter shape =
        new ProtoWriter()
            .message(SHAPE_DIM, new ProtoWriter().string(DIM_PARAM, ROWS_DIM))
            .message(SHAPE_DIM, new ProtoWriter().varint(DIM_VALUE, columns));
    ProtoWriter tensorType =
        new ProtoWriter()
            .varint(TENSOR_TYPE_ELEM_TYPE, DATA_TYPE_FLOAT)
            .message(TENSOR_TYPE_SHAPE, shape);
    return new ProtoWriter()
        .string(VALUE_INFO_NAME, name)
        .message(VALUE_INFO_TYPE, new ProtoWriter().message(TYPE_TENSOR_TYPE, tensorType));
  }

  /** raw_data is little-endian IEEE 754, whatever the machine's order. */
  private static byte[] littleEndian(float[] values) {
    ByteBuffer bb = ByteBuffer.allocate(Math.multiplyExact(values.length, Float.BYTES));
    bb.order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().put(values);
    return bb.array();
  }
}
