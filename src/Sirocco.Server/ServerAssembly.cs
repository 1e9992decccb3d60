// A marker for the server assembly (resource lookups and tests).

namespace Sirocco.Server;

/// <summary>Marks the Sirocco.Server assembly.</summary>
public static class ServerAssembly;
