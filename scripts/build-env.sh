# Sourced by the scripts that run the application: builds driver/target/roundhouse.jar, and beside it
# driver/target/spark-classpath.txt (Spark and its dependencies, which the jar leaves out), when
# either is missing or older than the sources. One reactor build (the modules the driver needs, from
# source), so a fresh clone needs no 'mvn install' and nothing of ours in the local Maven repository.
# Sets: root, jar, spark_cp_file
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
jar="$root/driver/target/roundhouse.jar"
spark_cp_file="$root/driver/target/spark-classpath.txt"

java_major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -1 || true)"
if [ -z "$java_major" ] || [ "$java_major" -lt 17 ]; then
  echo "roundhouse: needs Java 17 or newer on the PATH (found: $(java -version 2>&1 | head -1 || echo none));" \
    "install it (Debian: sudo apt-get install openjdk-17-jdk-headless) or put its bin/ first on the PATH" >&2
  exit 2
fi

build_stale() {
  [ -f "$jar" ] && [ -s "$spark_cp_file" ] || return 0
  [ -n "$(find "$root/pom.xml" "$root"/*/pom.xml "$root"/kernels/src "$root"/comms/src "$root"/worker/src \
      "$root"/driver/src -newer "$jar" -type f -print -quit 2>/dev/null)" ]
}
if build_stale; then
  echo "roundhouse: building driver/target/roundhouse.jar (first run or sources changed) ..." >&2
  (cd "$root" && ./mvnw -q -B -DskipTests package -pl driver -am) >&2
fi
