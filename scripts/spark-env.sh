# Sourced by the Spark scripts: builds the application jar when stale, resolves Spark from Maven
# once (the jar does not contain it), and sets
#   jar            driver/target/roundhouse.jar
#   spark_cp       Spark and its dependencies (a class path)
#   jvm_flags      what a JVM hosting Spark and Aeron needs on Java 17
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jar="$root/driver/target/roundhouse.jar"

stale() {
  [ ! -f "$jar" ] && return 0
  [ -n "$(find "$root/pom.xml" "$root"/*/pom.xml "$root"/kernels/src "$root"/comms/src "$root"/worker/src \
      "$root"/driver/src -newer "$jar" -type f -print -quit 2>/dev/null)" ]
}
if stale; then
  echo "roundhouse: building driver/target/roundhouse.jar (first run or sources changed) ..." >&2
  (cd "$root" && ./mvnw -q -B -DskipTests package -pl driver -am) >&2
fi

spark_cp_file="$root/driver/target/spark-classpath.txt"
if [ ! -s "$spark_cp_file" ] || [ "$root/pom.xml" -nt "$spark_cp_file" ] || [ "$root/driver/pom.xml" -nt "$spark_cp_file" ]; then
  echo "roundhouse: resolving Spark from Maven (first run) ..." >&2
  (cd "$root" && ./mvnw -q -B dependency:build-classpath -pl driver -Dmdep.includeScope=provided \
      -Dmdep.outputFile="$spark_cp_file") >&2
fi
spark_cp="$(cat "$spark_cp_file")"

jvm_flags=(--add-exports java.base/jdk.internal.misc=ALL-UNNAMED --add-opens java.base/java.nio=ALL-UNNAMED)
# The --add-opens list Spark needs on Java 17 (as spark-submit passes it).
for p in java.lang java.lang.invoke java.lang.reflect java.io java.net java.util java.util.concurrent \
         java.util.concurrent.atomic jdk.internal.ref sun.nio.ch sun.nio.cs sun.security.action sun.util.calendar; do
  jvm_flags+=("--add-opens=java.base/$p=ALL-UNNAMED")
done
jvm_flags+=(-Djdk.reflect.useDirectMethodHandle=false -Dio.netty.tryReflectionSetAccessible=true)
