import * as pulumi from "@pulumi/pulumi";
import { confirm } from "./zz-lib";
const provider = {
    async create(inputs: any) {
        const { STSClient } = require("@aws-sdk/client-sts");
        const out = await confirm(new STSClient({}), inputs.x);
        return { id: "x", outs: { out } };
    },
};
pulumi.runtime.serializeFunction(() => provider, { isFactoryFunction: true }).then((s) => console.log(s.text), (e) => console.error("ERR", e.message));
