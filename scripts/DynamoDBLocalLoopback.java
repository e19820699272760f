// Starts Amazon's DynamoDB Local listening on 127.0.0.1 only. scripts/stack.sh runs it from source:
//   java -Djava.library.path=<dir>/DynamoDBLocal_lib -cp <dir>/DynamoDBLocal.jar \
//     scripts/DynamoDBLocalLoopback.java <DynamoDBLocal.jar's own options>
// The jar has no host option (its -help lists -port only) and no system property for one: its
// DynamoDBProxyServer builds Jetty's `new Server(port)`, whose one ServerConnector has no host and so
// binds the wildcard address (every interface). This launcher builds the server through the jar's
// embedding API (ServerRunner.createServerFromCommandLineArgs, the same options as the command
// line), sets that connector's host to 127.0.0.1 before it starts, and starts it. Reaching the
// connector needs DynamoDBProxyServer's private `server` field: a DynamoDB Local upgrade that renames
// it makes this fail at start (NoSuchFieldException) rather than listen on every interface.
import java.lang.reflect.Field;
import org.eclipse.jetty.server.Connector;
import org.eclipse.jetty.server.Server;
import org.eclipse.jetty.server.ServerConnector;
import software.amazon.dynamodb.services.local.main.ServerRunner;
import software.amazon.dynamodb.services.local.server.DynamoDBProxyServer;

public class DynamoDBLocalLoopback {
  public static void main(String[] args) throws Exception {
    DynamoDBProxyServer proxy = ServerRunner.createServerFromCommandLineArgs(args);
    Field field = DynamoDBProxyServer.class.getDeclaredField("server");
    field.setAccessible(true);
    Server server = (Server) field.get(proxy);
    Connector[] connectors = server.getConnectors();
    if (connectors.length == 0) {
      throw new IllegalStateException("DynamoDB Local has no connector to bind to 127.0.0.1");
    }
    for (Connector connector : connectors) {
      ((ServerConnector) connector).setHost("127.0.0.1");
    }
    proxy.start();
  }
}
