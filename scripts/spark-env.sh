# Sourced by the Spark scripts: builds the application jar and Spark's class path when stale
# (build-env.sh; the jar does not contain Spark), and sets
#   jar            driver/target/roundhouse.jar
#   spark_cp       Spark and its dependencies (a class path)
#   jvm_flags      what a JVM hosting Spark and Aeron needs on Java 17
# shellcheck source=build-env.sh
source "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/build-env.sh"
spark_cp="$(cat "$spark_cp_file")"

jvm_flags=(--add-exports java.base/jdk.internal.misc=ALL-UNNAMED --add-opens java.base/java.nio=ALL-UNNAMED)
# The --add-opens list Spark needs on Java 17 (as spark-submit passes it).
for p in java.lang java.lang.invoke java.lang.reflect java.io java.net java.util java.util.concurrent \
         java.util.concurrent.atomic jdk.internal.ref sun.nio.ch sun.nio.cs sun.security.action sun.util.calendar; do
  jvm_flags+=("--add-opens=java.base/$p=ALL-UNNAMED")
done
jvm_flags+=(-Djdk.reflect.useDirectMethodHandle=false -Dio.netty.tryReflectionSetAccessible=true)
