// The check a finetune's two files must pass together before the store calls it ready. The store calls it once per
// finetune, when the upload that completes it arrives; the upload is refused (and its file not kept) if it throws.
// JsonConfigValidator is the basic implementation; one that loads the adapter with the engine can replace it.

using Sirocco.Server.Protocol;

namespace Sirocco.Server.Finetunes;

/// <summary>Validates an adapter's files.</summary>
public interface IAdapterValidator
{
    /// <summary>Checks that <paramref name="configPath"/> (adapter_config.json) and <paramref name="weightsPath"/>
    /// (adapter_model.safetensors) form an adapter this server can apply. The paths may be temporary files without
    /// those names; messages name the files by their role.</summary>
    /// <exception cref="ApiException">The adapter is unusable; the message says which file, which key and why
    /// (status 400, code 5006 unless another fits better).</exception>
    void Validate(string configPath, string weightsPath);
}
