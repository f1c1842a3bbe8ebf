using MLNet.Contrastive.Data;

namespace MLNet.Contrastive.Cli.Commands;

/// <summary>The files <c>pretrain --out</c> writes, found from a folder or from its model.zip.</summary>
internal sealed record ModelFiles(string ModelZip, string EncoderOnnx)
{
    public const string ModelFile = "model.zip", EncoderFile = "encoder.onnx", ImagePathColumn = "ImagePath";

    /// <summary>finetune's whole network: images → class logits (what model.zip applies).</summary>
    public const string NetworkFile = "network.onnx";

    /// <summary>A clip run's towers: images → joint space, and caption features or second images → joint space.</summary>
    public const string ImageTowerFile = "image_tower.onnx", TextTowerFile = "text_tower.onnx", PairedImageTowerFile = "paired_image_tower.onnx";

    public static ModelFiles Resolve(string model)
    {
        var folder = Directory.Exists(model) ? model : Path.GetDirectoryName(Path.GetFullPath(model))!;
        var files = new ModelFiles(Directory.Exists(model) ? Path.Combine(model, ModelFile) : model, Path.Combine(folder, EncoderFile));
        if (!File.Exists(files.ModelZip)) throw new FileNotFoundException($"{files.ModelZip}: model not found (pass the folder pretrain wrote, or its model.zip).");
        if (!File.Exists(files.EncoderOnnx)) throw new FileNotFoundException($"{files.EncoderOnnx}: the encoder that goes with {files.ModelZip} is missing.");
        return files;
    }

    /// <summary>Image files under a folder, recursively, in a stable order.</summary>
    public static List<string> ImagesUnder(string folder)
    {
        if (!Directory.Exists(folder)) throw new ImageDataException(folder, "folder not found.");
        var files = ImageDecoder.ImageFilesUnder(folder);
        return files.Count > 0 ? files : throw new ImageDataException(folder, "the folder holds no .png, .jpg, .jpeg or .bmp images.");
    }
}
