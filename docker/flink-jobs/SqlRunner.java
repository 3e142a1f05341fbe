/*
 * Runs one Flink SQL script in application mode: the job image's entry class (FlinkDeployment `jarURI:
 * local:///opt/flink/usrlib/sql-runner.jar`, `args: [<script>]`).
 *
 * Why our own runner: the operator's SQL runner is an example, not a published artifact, and the medallion scripts
 * need one thing it lacks: `${VAR}` / `${VAR:-default}` placeholders filled from the environment, so one script
 * (built into the image) serves every target, while endpoints and credentials arrive at run time (env from
 * Kubernetes Secrets, or an IAM role). A placeholder whose variable is unset and has no default stops the job
 * before anything is submitted, naming the variable.
 *
 * Statements end with `;` at the end of a line; `EXECUTE STATEMENT SET BEGIN ... END;` is one statement (its
 * INSERTs become one job). `SET 'key' = 'value';` sets a table option. `--` lines are comments.
 * `--await`: wait for the last job to finish (bounded scripts; a streaming job runs until cancelled).
 */
package dataplatform;

import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.TableResult;

public final class SqlRunner {
    private static final Pattern PLACEHOLDER = Pattern.compile("\\$\\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?}");
    private static final Pattern SET = Pattern.compile("(?is)^SET\\s+'([^']+)'\\s*=\\s*'([^']*)'$");
    private static final Pattern SET_BEGIN = Pattern.compile("(?is)^EXECUTE\\s+STATEMENT\\s+SET\\s+BEGIN\\b.*");

    private SqlRunner() {
    }

    public static void main(String[] args) throws Exception {
        List<String> paths = new ArrayList<>();
        boolean await = false;
        for (String arg : args) {
            if (arg.equals("--await")) {
                await = true;
            } else {
                paths.add(arg);
            }
        }
        if (paths.size() != 1) {
            throw new IllegalArgumentException("usage: SqlRunner [--await] <script.sql>");
        }
        String script = fill(Files.readString(Path.of(paths.get(0)), StandardCharsets.UTF_8), System.getenv());
        List<String> statements = split(script);
        if (statements.isEmpty()) {
            throw new IllegalArgumentException(paths.get(0) + ": no SQL statements");
        }
        TableEnvironment tables = TableEnvironment.create(EnvironmentSettings.inStreamingMode());
        TableResult last = null;
        for (String statement : statements) {
            Matcher set = SET.matcher(statement);
            if (set.matches()) {
                tables.getConfig().set(set.group(1), set.group(2));
                System.out.println("SET " + set.group(1));
                continue;
            }
            System.out.println("executing: " + firstLine(statement));
            last = tables.executeSql(statement);
        }
        if (await && last != null) {
            last.await();
        }
    }

    /** The script with every placeholder replaced; an unset variable without a default is an error. */
    static String fill(String script, Map<String, String> environment) {
        Matcher matcher = PLACEHOLDER.matcher(script);
        StringBuilder out = new StringBuilder();
        List<String> missing = new ArrayList<>();
        while (matcher.find()) {
            String value = environment.get(matcher.group(1));
            if (value == null) {
                value = matcher.group(3);
            }
            if (value == null) {
                missing.add(matcher.group(1));
                value = "";
            }
            matcher.appendReplacement(out, Matcher.quoteReplacement(value));
        }
        matcher.appendTail(out);
        if (!missing.isEmpty()) {
            throw new IllegalArgumentException("the SQL script needs these environment variables: "
                    + String.join(", ", missing));
        }
        return out.toString();
    }

    /** Statements ending with `;` at the end of a line; a statement set up to its `END;` is one statement. */
    static List<String> split(String script) {
        List<String> statements = new ArrayList<>();
        StringBuilder current = new StringBuilder();
        for (String line : script.split("\n", -1)) {
            String trimmed = line.strip();
            if (trimmed.startsWith("--") || (trimmed.isEmpty() && current.length() == 0)) {
                continue;
            }
            current.append(line).append('\n');
            String text = current.toString().strip();
            boolean inSet = SET_BEGIN.matcher(text).matches();
            boolean ends = inSet ? trimmed.matches("(?i)^END\\s*;$") : trimmed.endsWith(";");
            if (ends) {
                statements.add(text.substring(0, text.length() - 1).strip());
                current.setLength(0);
            }
        }
        if (current.toString().strip().length() > 0) {
            statements.add(current.toString().strip());
        }
        return statements;
    }

    private static String firstLine(String statement) {
        int end = statement.indexOf('\n');
        return end < 0 ? statement : statement.substring(0, end) + " ...";
    }
}
