package io.q4spark.spark.sql;

import org.apache.spark.sql.catalyst.analysis.NoSuchFunctionException;
import org.apache.spark.sql.connector.catalog.FunctionCatalog;
import org.apache.spark.sql.connector.catalog.Identifier;
import org.apache.spark.sql.connector.catalog.functions.UnboundFunction;
import org.apache.spark.sql.util.CaseInsensitiveStringMap;

/**
 * A function catalog holding {@code linear}: with {@code
 * spark.sql.catalog.q4=io.q4spark.spark.sql.Q4FunctionCatalog}, SQL calls it as {@code
 * q4.linear('model', features)}. It holds functions only (no namespaces, no tables).
 */
public final class Q4FunctionCatalog implements FunctionCatalog {
  private String name = "q4";

  @Override
  public void initialize(String name, CaseInsensitiveStringMap options) {
    this.name = name;
  }

  @Override
  public String name() {
    return name;
  }

  @Override
  public Identifier[] listFunctions(String[] namespace) {
    return namespace.length == 0
        ? new Identifier[] {Identifier.of(namespace, Q4LinearFunction.CATALOG_NAME)}
        : new Identifier[0];
  }

  @Override
  public UnboundFunction loadFunction(Identifier ident) throws NoSuchFunctionException {
    if (ident.namespace().length == 0
        && ident.name().equalsIgnoreCase(Q4LinearFunction.CATALOG_NAME)) {
      return new Q4LinearFunction(name + "." + Q4LinearFunction.CATALOG_NAME);
    }
    throw new NoSuchFunctionException(ident);
  }
}
