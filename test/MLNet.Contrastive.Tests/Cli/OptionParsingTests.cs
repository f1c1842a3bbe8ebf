using System.CommandLine;
using MLNet.Contrastive.Cli.Commands;
using MLNet.Contrastive.Methods;

namespace MLNet.Contrastive.Tests.Cli;

/// <summary>The command-line tool's own parsing: values the library then takes, and the errors a user sees.</summary>
public class OptionParsingTests
{
    [Test]
    public void NormalizationNamesAndValues()
    {
        Assert.That(CommonOptions.ParseNormalization(null), Is.Null, "ImageNet's, the state dicts' default");
        Assert.That(CommonOptions.ParseNormalization("ImageNet"), Is.Null);
        Assert.That(CommonOptions.ParseNormalization("half"), Is.EqualTo((new[] { 0.5f, 0.5f, 0.5f }, new[] { 0.5f, 0.5f, 0.5f })));
        Assert.That(CommonOptions.ParseNormalization("0.1,0.2,0.3/0.4,0.5,0.6"), Is.EqualTo((new[] { 0.1f, 0.2f, 0.3f }, new[] { 0.4f, 0.5f, 0.6f })));
        Assert.That(CommonOptions.ParseNormalization("0.5/0.25"), Is.EqualTo((new[] { 0.5f }, new[] { 0.25f })));
        Assert.That(() => CommonOptions.ParseNormalization("0.5,x/1,1"), Throws.ArgumentException.With.Message.EqualTo("--normalization: 'x' is not a number."));
        Assert.That(() => CommonOptions.ParseNormalization("0.5,0.5"), Throws.ArgumentException.With.Message.Contains("is not imagenet, half or MEAN/STD"));
        Assert.That(() => CommonOptions.ParseNormalization("0.5,0.5/1"), Throws.ArgumentException.With.Message.EqualTo("--normalization: 2 means but 1 standard deviations."));
        Assert.That(() => CommonOptions.ParseNormalization("0.5/0"), Throws.ArgumentException.With.Message.Contains("must be positive"));
    }

    [Test]
    public void MethodSettingsSetAnyPropertyByNameAndNameTheUnknownOnes()
    {
        var distill = (DistillationOptions)MethodSettings.Create("distill", ["teacher=imagenet-resnet18", "teacher-image-size=96", "target=Global", "mixup=false"]);
        Assert.That((distill.Teacher, distill.TeacherImageSize, distill.Target, distill.Mixup), Is.EqualTo(("imagenet-resnet18", 96, DistillationTarget.Global, false)));
        Assert.That(() => MethodSettings.Create("distill", []), Throws.ArgumentException.With.Message.Contains("Distillation needs a teacher"));
        Assert.That(() => MethodSettings.Create("simclr", ["teacher=x"]), Throws.ArgumentException.With.Message.Contains("method 'simclr' has no setting 'teacher'"));
    }

    [Test]
    public void EncoderNamesParseWhateverTheirCase()
    {
        var option = CommonOptions.Encoder();
        var command = new RootCommand { option };
        Assert.That(command.Parse(["--encoder", "resnet50"]).GetValue(option), Is.EqualTo(MLNet.Contrastive.Models.EncoderPreset.ResNet50));
        Assert.That(command.Parse(["--encoder", "VITSMALL"]).GetValue(option), Is.EqualTo(MLNet.Contrastive.Models.EncoderPreset.VitSmall));
        Assert.That(command.Parse(["--encoder", "resnet99"]).Errors, Is.Not.Empty);
    }

    [Test]
    public void PretrainRefusesOptionsWithoutTheOptionTheyGoWith()
    {
        using var folder = TestData.NewFolder();
        var (exitCodes, said) = Invoke(
            ["pretrain", "--data", TestData.TrainImages, "--out", folder.Path, "--vit-pooling", "MeanPatchTokens"],
            ["pretrain", "--data", TestData.TrainImages, "--out", folder.Path, "--encoder", "ResNet18", "--vit-pooling", "MeanPatchTokens"],
            ["pretrain", "--data", TestData.TrainImages, "--out", folder.Path, "--restarts", "1"],
            ["pretrain", "--data", TestData.TrainImages, "--out", folder.Path, "--stall-timeout", "-5"],
            ["pretrain", "--data", TestData.TrainImages, "--out", folder.Path, "--stall-timeout", "NaN"]);
        Assert.That(exitCodes, Is.EqualTo(new[] { 1, 1, 1, 1, 1 }));
        Assert.That(said, Does.Contain("--vit-pooling goes with a Vision Transformer: --encoder VitTiny or VitSmall.").And.Contain("--restarts goes with --ranks N")
            .And.Contain("--stall-timeout must be 0 (wait for ever) or a positive number of seconds, not -5").And.Contain("not NaN"));
    }

    [Test]
    public void FinetuneSoupNeedsAModelAndAtLeastOneRun()
    {
        using var folder = TestData.NewFolder();
        string[] data = ["finetune", "--train", TestData.TrainImages, "--train-labels", TestData.TrainLabels, "--test", TestData.TrainImages,
            "--test-labels", TestData.TrainLabels, "--out", folder.Path];
        var (exitCodes, said) = Invoke([.. data, "--soup", "2"], [.. data, "--soup", "0"]);
        Assert.That(exitCodes, Is.EqualTo(new[] { 1, 1 }));
        Assert.That(said, Does.Contain("--soup averages fine-tuning runs that start from the same --model").And.Contain("--soup must be at least 1"));
    }

    /// <summary>Runs the tool's commands in this process; their exit codes and what they wrote to stderr.</summary>
    private static (int[] ExitCodes, string Said) Invoke(params string[][] commands)
    {
        var (error, previous) = (new StringWriter(), Console.Error);
        Console.SetError(error);
        try
        {
            return (commands.Select(args => MLNet.Contrastive.Cli.Commands.Commands.Root().Parse(args).Invoke()).ToArray(), error.ToString());
        }
        finally
        {
            Console.SetError(previous);
        }
    }

    [Test]
    public void ChannelsComeFromTheDataUnlessGiven()
    {
        using var folder = TestData.NewFolder();
        TestData.WriteImage(folder["rgb/a.png"], 300, 300, 1);
        TestData.WriteImage(folder["grey/a.png"], 30, 30, 1, gray: true);
        Assert.That(DataShape.Channels(null, folder["rgb"], 28), Is.EqualTo(3));
        Assert.That(DataShape.Channels(null, folder["grey"], 28), Is.EqualTo(1));
        Assert.That(DataShape.Channels(1, folder["rgb"], 28), Is.EqualTo(1), "--channels wins");
        Assert.That(DataShape.Channels(null, TestData.TrainImages, 28), Is.EqualTo(1));
    }

    [Test]
    public void SharedOptionsAreDeclaredOnceAndMeanTheSameInEveryCommand()
    {
        var root = MLNet.Contrastive.Cli.Commands.Commands.Root();
        var shared = root.Subcommands.SelectMany(c => c.Options.Select(o => (Command: c.Name, Option: o)))
            .Where(p => p.Option.Name is "--threads" or "--device" or "--seed" or "--encoder").ToList();
        Assert.That(shared.Select(p => p.Command).Distinct(), Is.SupersetOf(new[] { "pretrain", "demo", "finetune", "probe" }));
        foreach (var group in shared.GroupBy(p => p.Option.Name))
        {
            var defaults = group.Select(p => Default(root.Subcommands.Single(c => c.Name == p.Command), p.Option)).Distinct().ToList();
            Assert.That(defaults, Is.EqualTo(new[] { group.Key switch { "--threads" => Environment.ProcessorCount.ToString(System.Globalization.CultureInfo.InvariantCulture), "--device" => "auto", "--seed" => "0", _ => null } }), $"{group.Key} has one default in every command");
            var descriptions = group.Select(p => p.Option.Description!).ToList();
            if (group.Key == "--seed") Assert.That(descriptions, Has.All.StartsWith("Seed of ").And.All.EndsWith(". Default 0."));
            else if (group.Key == "--encoder") Assert.That(descriptions, Has.All.Contains("Small (stem 16, stages 32-64-128)"));
            else Assert.That(descriptions.Distinct().Count(), Is.EqualTo(1), $"{group.Key} has one description");
        }
    }

    private static string? Default(Command command, Option option) => option switch
    {
        Option<int> number => command.Parse([]).GetValue(number).ToString(System.Globalization.CultureInfo.InvariantCulture),
        Option<string> text => command.Parse([]).GetValue(text),
        _ => null,
    };
}
